"""Is this text clearly not English? A conservative check before English-only PII detection.

An English model run over German or Slovenian prose returns few findings, which reads as "no
personal data here". The check answers only when the evidence is strong, because most scanned
values are short and language-less (names, addresses, numbers, CSV cells):

- fewer than `MIN_WORDS` words: never rejected;
- mostly letters outside the Latin script (Cyrillic, Greek, CJK, Arabic, ...): rejected;
- Latin script: rejected only when English function words are nearly absent AND function words
  of another language are frequent. A list of names or an address has neither, so it passes.

No model and no download: word lists of the commonest function words (general knowledge).
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MIN_WORDS = 8
NON_LATIN_SHARE = 0.5
MAX_ENGLISH_SHARE = 0.1
MIN_FOREIGN_SHARE = 0.2

ENGLISH = _words(
    """the a an and or but of to in on at for with from by as is are was were be been being it
    its this that these those i you he she we they me him her us them my your his our their
    not no do does did have has had will would can could should shall may might must there
    here what which who when where why how if then than so all any some about into over after
    before up out just only also very please thank thanks yes"""
)
# Frequent function words of other languages written in Latin script, leaving out words that
# are also English or common name particles ("de", "van", "la", "da").
FOREIGN = {
    "German": "der die das und ist nicht ich sie wir ihr mit den dem des ein eine einen einem "
    "zu von für auf sich auch dass werden wird sind war nach bei oder aber wie noch nur schon "
    "wenn über müssen haben hat kann",
    "Slovenian": "je na za da se so ki pa ne ni bo bom bomo bodo sem smo ste sta tudi ali kot "
    "lahko biti bil bila samo še že zelo iz od po pri kaj tako zato ker če ko kjer kar jo ji ga "
    "mu jih nas vas naj saj med brez danes jutri",
    "French": "le les et est une des du que qui pour dans pas sur avec ce cette sont nous vous "
    "ils mais ou où très aussi être avoir fait",
    "Spanish": "el los las y es una por con para que del se lo como más pero sus muy está son "
    "también fue hay",
    "Italian": "il gli e è una per con che non sono della delle degli anche più ma come questo "
    "questa molto",
    "Dutch": "het een en is niet ik je wij zijn met voor op dat dit ook maar nog wel naar",
    "Portuguese": "os uma e é por com para que não mais mas como são também muito você",
    "Croatian/Serbian/Bosnian": "je i u na za da se su što ali kao biti bio bila samo još već "
    "vrlo iz od po",
    "Polish": "i w na z że się nie jest do to jak ale po od tak już czy dla przez",
}
_FOREIGN_SETS = {lang: frozenset(words.split()) - ENGLISH for lang, words in FOREIGN.items()}

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?", re.UNICODE)


def _is_latin(ch: str) -> bool:
    code = ord(ch)
    return code < 0x250 or 0x1E00 <= code <= 0x1EFF


def non_english_reason(text: str) -> str | None:
    """Why `text` is clearly not English, or None when it may be (or is too short to tell)."""
    words = _WORD.findall(text)
    if len(words) < MIN_WORDS:
        return None
    letters = [c for w in words for c in w]
    non_latin = sum(not _is_latin(c) for c in letters)
    if non_latin / len(letters) > NON_LATIN_SHARE:
        return "most of its letters are not in the Latin alphabet"
    lower = [w.lower() for w in words]
    english = sum(w in ENGLISH for w in lower) / len(lower)
    if english > MAX_ENGLISH_SHARE:
        return None
    best_lang, best_share = "", 0.0
    for lang, vocabulary in _FOREIGN_SETS.items():
        hits = [w for w in lower if w in vocabulary]
        share = len(hits) / len(lower)
        if share > best_share and len(set(hits)) >= 2:
            best_lang, best_share = lang, share
    if best_share >= MIN_FOREIGN_SHARE:
        return f"it reads as {best_lang}"
    return None
