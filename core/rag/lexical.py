"""BM25 lexical retrieval over our integer ids, backed by bm25s (sparse, precomputed scores).

Text is lower-cased, split on word characters, English stopwords removed and Snowball-stemmed
(PyStemmer), the recipe bm25s documents. The index keeps our ids beside bm25s' row numbers so
results, filters and persistence speak our ids only.

bm25s and PyStemmer ship without type information; they are imported lazily through importlib,
which also keeps them off the import path of code that never searches.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ValidationError

META_FILE = "omni_lexical.json"
FORMAT_VERSION = 1


def _bm25s() -> Any:
    try:
        return importlib.import_module("bm25s")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValidationError(
            "Lexical search needs the bm25s package: `pip install bm25s PyStemmer`."
        ) from exc


def _stemmer(language: str) -> Any:
    try:
        module = importlib.import_module("Stemmer")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValidationError(
            "Lexical search needs the PyStemmer package: `pip install PyStemmer`."
        ) from exc
    try:
        return module.Stemmer(language)
    except KeyError as exc:
        raise ValidationError(f"No stemmer for language {language!r}.") from exc


class LexicalIndex:
    """BM25 (Lucene variant) over a fixed set of documents.

    `build` replaces the whole index; ids are unique ints chosen by the caller.
    """

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        stopwords: str = "en",
        stem_language: str = "english",
    ) -> None:
        if k1 < 0:
            raise ValidationError(f"BM25 k1 must be >= 0, got {k1}.")
        if not 0.0 <= b <= 1.0:
            raise ValidationError(f"BM25 b must be between 0 and 1, got {b}.")
        self.k1 = float(k1)
        self.b = float(b)
        self.stopwords = stopwords
        self.stem_language = stem_language
        self._stem = _stemmer(stem_language)
        self._retriever: Any = None
        self._ids: np.ndarray = np.zeros(0, dtype=np.int64)
        self._positions: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[int]:
        return [int(i) for i in self._ids]

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        tokens: list[list[str]] = _bm25s().tokenize(
            texts,
            stopwords=self.stopwords,
            stemmer=self._stem,
            return_ids=False,
            show_progress=False,
        )
        return tokens

    def build(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        if len(ids) != len(texts):
            raise ValidationError(
                f"Lexical index: {len(ids)} ids but {len(texts)} texts; they must pair up."
            )
        if not ids:
            raise ValidationError("Lexical index: nothing to index (no documents).")
        as_ints = [int(i) for i in ids]
        positions: dict[int, int] = {}
        for pos, doc_id in enumerate(as_ints):
            if doc_id in positions:
                raise ValidationError(f"Lexical index: document id {doc_id} appears twice.")
            positions[doc_id] = pos
        bm25s = _bm25s()
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        retriever.index(self._tokenize(list(texts)), show_progress=False)
        self._retriever = retriever
        self._ids = np.asarray(as_ints, dtype=np.int64)
        self._positions = positions

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed document for `query`, in index order."""
        if self._retriever is None:
            raise ValidationError("Lexical index is empty: build or load it before searching.")
        tokens = self._tokenize([query])[0]
        vocab = self._retriever.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(len(self._ids), dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)

    def search(
        self, query: str, k: int = 10, allowed_ids: Iterable[int] | None = None
    ) -> list[tuple[int, float]]:
        """Up to `k` (id, score) pairs, best first; only documents sharing a term with the query
        (score > 0), and only ids in `allowed_ids` when it is given."""
        if k <= 0:
            raise ValidationError(f"k must be a positive number of results, got {k}.")
        scores = self.scores(query)
        if allowed_ids is not None:
            keep = [self._positions[i] for i in allowed_ids if i in self._positions]
            candidates = np.asarray(keep, dtype=np.int64)
        else:
            candidates = np.arange(len(scores), dtype=np.int64)
        if candidates.size == 0:
            return []
        cand_scores = scores[candidates]
        positive = cand_scores > 0
        candidates, cand_scores = candidates[positive], cand_scores[positive]
        if candidates.size == 0:
            return []
        if candidates.size > k:
            top = np.argpartition(-cand_scores, k - 1)[:k]
            candidates, cand_scores = candidates[top], cand_scores[top]
        order = np.lexsort((self._ids[candidates], -cand_scores))
        return [(int(self._ids[candidates[i]]), float(cand_scores[i])) for i in order]

    def save(self, directory: str | Path) -> None:
        if self._retriever is None:
            raise ValidationError("Lexical index is empty: nothing to save.")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(path), show_progress=False)
        np.save(path / "omni_ids.npy", self._ids)
        meta = {
            "format": FORMAT_VERSION,
            "k1": self.k1,
            "b": self.b,
            "stopwords": self.stopwords,
            "stem_language": self.stem_language,
            "count": len(self._ids),
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> LexicalIndex:
        path = Path(directory)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise ValidationError(f"No lexical index in {path}: {META_FILE} is missing.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValidationError(
                    f"{meta_path}: unsupported lexical index format {meta.get('format')!r}."
                )
            index = cls(
                k1=float(meta["k1"]),
                b=float(meta["b"]),
                stopwords=str(meta["stopwords"]),
                stem_language=str(meta["stem_language"]),
            )
            ids = np.load(path / "omni_ids.npy", allow_pickle=False)
            retriever = _bm25s().BM25.load(str(path), show_progress=False)
        except ValidationError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"Lexical index in {path} is unreadable: {exc}") from exc
        if len(ids) != int(meta["count"]) or retriever.scores["num_docs"] != len(ids):
            raise ValidationError(f"Lexical index in {path} is inconsistent (document counts).")
        index._retriever = retriever
        index._ids = ids.astype(np.int64)
        index._positions = {int(doc_id): pos for pos, doc_id in enumerate(index._ids)}
        return index
