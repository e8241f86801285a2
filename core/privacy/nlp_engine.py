"""The spaCy side of the PII engine: only the named-entity recogniser, batched, never downloaded.

`en_core_web_sm` runs six components (tok2vec, tagger, parser, attribute_ruler, lemmatizer,
ner); its NER has its own embedding layer, so the other five only feed Presidio's context
enhancer with lemmas. Loading the NER alone gives the same entities (1,496 of the 1,500
benchmark sentences identical, the rest differ only in sentence-boundary effects) at about twice
the speed, and `nlp.pipe` batching adds more (bench/pii.py). Context words are matched against
lower-cased tokens instead of lemmas, so recognizers list the inflected forms they need.

Presidio's SpacyNlpEngine would also try `spacy download` for a missing model; here a missing
model is a configuration error with the command that installs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import spacy
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

from core.errors import ConfigurationError

EXCLUDED_COMPONENTS = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")
NER_DEFAULT_SCORE = 0.85


class NerOnlySpacyNlpEngine(SpacyNlpEngine):
    """SpacyNlpEngine with the NER component alone, lower-cased tokens as lemmas."""

    def load(self) -> None:
        pipelines: dict[str, Any] = {}
        for model in self.models:
            name = model["model_name"]
            if not spacy.util.is_package(name):
                raise ConfigurationError(
                    f"The spaCy pipeline {name!r} is not installed; PII detection needs it. Run "
                    "`make setup` (it installs requirements-models.txt) and restart."
                )
            pipelines[model["lang_code"]] = spacy.load(name, exclude=list(EXCLUDED_COMPONENTS))
        # the base class declares `nlp` as None until loaded
        self.nlp = pipelines  # type: ignore[assignment]

    def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
        entities = list(doc.ents)
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lower_ for token in doc],
            nlp_engine=self,
            language=language,
            scores=[NER_DEFAULT_SCORE] * len(entities),
        )

    def artifacts(
        self, texts: Iterable[str], language: str, *, ner: bool = True, batch_size: int = 64
    ) -> Iterator[NlpArtifacts]:
        """Artifacts for each text in order; with `ner=False` only the tokenizer runs (for
        requests that ask for pattern-based entities alone)."""
        pipelines: dict[str, Any] | None = self.nlp
        if not pipelines:
            raise ConfigurationError("The PII engine's spaCy pipeline is not loaded.")
        nlp = pipelines[language]
        if ner:
            for doc in nlp.pipe(texts, batch_size=batch_size):
                yield self._doc_to_nlp_artifact(doc, language)
        else:
            for text in texts:
                doc = nlp.make_doc(text)
                yield self._doc_to_nlp_artifact(doc, language)
