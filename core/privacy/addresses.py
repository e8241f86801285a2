"""Postal addresses in free text, as whole blocks: street line, unit, town, region, postcode.

spaCy's small English model sees an address as a handful of unrelated entities (a house number
as DATE, a street as PERSON, the town as ORG) and misses most of it. This scanner works on
tokens instead:

1. Anchors: a street line (house number(s) + street words + house number, or street words with
   a street-type word such as "Road", "ul.", "Rue", "-straße", "-vej", "-katu" + house number),
   a unit ("Apt. 12", "Suite 300", "P.O. Box 4"), or a military address ("PSC 4574, Box 8393",
   "APO AE 20040", "USNS Vincent").
2. From an anchor the block grows over what follows on the same or the next lines while it
   looks like the rest of an address: more anchors, town and country names (capitalised or
   upper-case words), region codes, postcodes, parenthesised names. It stops at a sentence
   word ("for", "in case"), a labelled line ("Mobile: ..."), or a sentence end.

The street-type words are the common ones of European and English-speaking countries (general
knowledge, not this project's data). A number next to ordinary words ("20 songs", "Windows 10",
"12 May 2020") is not an anchor: it needs a street word, or numbers on both sides of a
capitalised name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.privacy.spans import Span


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STREET_SCORE = 0.9
UNIT_SCORE = 0.7

# Whole words (lower case, without a final dot) that name a street type.
STREET_WORDS = _words(
    """street st str road rd avenue ave av avda avd avenida lane ln drive dr way court ct
    place pl plaza crescent cres boulevard blvd bd terrace tce close square sq highway hwy
    parkway pkwy circle cir trail row walk path grove gardens alley mews quay wharf esplanade
    parade rise vale circus broadway strasse straße gasse weg platz allee ring damm ufer chaussee
    rue chemin impasse allée quai route voie cours via viale piazza vicolo corso largo strada
    calle carrera camino paseo ronda travesía rua travessa praça estrada alameda ul ulica aleja
    al os osiedle plac cesta trg ulice náměstí nám třída utca út tér körút vej gade gatan vägen
    väg gränd veien vei gata gate katu tie polku kuja laan straat steeg gracht kade plein dreef
    vegur braut stræti stigur sokak cadde caddesi odos leoforos bulevar bulevardul strada
    stradă flat flats greens pass turnpike bypass radial mill mills courts crossing extension
    extensions heights hollow junction knoll landing loop manor meadows pike plains ridge
    shoals shores skyway summit throughway trace trafficway underpass viaduct vista expressway
    freeway causeway cove creek glen harbor haven isle lodge motorway oval overpass spur
    village ville wells"""
)
# Endings of one-word street names in Germanic, Nordic, Finnish and Dutch languages.
STREET_SUFFIXES = (
    "strasse",
    "straße",
    "str.",
    "gasse",
    "weg",
    "platz",
    "allee",
    "damm",
    "ring",
    "vej",
    "vænget",
    "gade",
    "gatan",
    "vägen",
    "väg",
    "gränd",
    "veien",
    "vegen",
    "veg",
    "stien",
    "gata",
    "katu",
    "tie",
    "polku",
    "kuja",
    "laan",
    "straat",
    "steeg",
    "gracht",
    "kade",
    "plein",
    "dreef",
    "vegur",
    "braut",
    "stræti",
    "straeti",
    "stigur",
    "utca",
    "road",
    "street",
    "avenue",
)
# Street words that come before the name ("Rue de la Paix", "ul. Narewska", "Via Roma").
PREFIX_STREET_WORDS = _words(
    """rue chemin impasse allée quai route voie cours via viale piazza vicolo corso largo strada
    calle carrera camino paseo ronda travesía rua travessa praça estrada alameda ul ulica aleja
    al os osiedle plac cesta trg ulice náměstí nám třída avda avd avenida odos leoforos bulevar
    bulevardul"""
)
UNIT_WORDS = _words("apt apartment suite ste unit flat fl floor box postbox pobox bldg building")
MILITARY_POST = frozenset({"apo", "fpo", "dpo"})
MILITARY_REGIONS = frozenset({"aa", "ae", "ap"})
MILITARY_UNITS = frozenset({"psc", "cmr", "unit"})
SHIP_PREFIXES = frozenset({"usns", "usnv", "uss", "uscgc"})
# Short words inside place and street names ("Rue de la Paix", "Frankfurt am Main").
PARTICLES = _words(
    """de del della di da do dos das du des la le les el los las der den von van am an im auf
    upon sur en y e i op aan bei na nad pod ob ul."""
)
# Words that end an address: the sentence goes on ("... 12 Main St for this card").
SENTENCE_WORDS = _words(
    """a an the and or but for of to in on at by with from as is are was were be been am i me
    my you your he his she her it its we our they their this that these those who which what
    when where why how here there not no please thanks if then than after before since until
    while because last next in case hi hello dear visit"""
)
LABELS = _words(
    """mobile phone tel telephone fax desk office cell email e-mail website web url name
    address when where date"""
)
_MONTHS = _words(
    """january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec"""
)

_TOKEN = re.compile(r"[^\s,;]+|[,;]")
# Line decorations in front of address lines ("> Suite 12", "??? Oslo", "- Main St 4").
_JUNK = ">*•·|?-"
_NUM = re.compile(r"^#?\d{1,6}[A-Za-z]?(?:[/-]\d{1,4}[A-Za-z]?)?\.?$")
_ZIP = re.compile(r"^\d{3,6}(?:-\d{3,4})?[.?!]?$")
_CODE = re.compile(r"^[A-Z]{2,3}[.?!]?$")
_PAREN = re.compile(r"^\(.+\)[.?!]?$")


_STREET_SUFFIX = re.compile(
    "(?:" + "|".join(re.escape(x) for x in STREET_SUFFIXES) + ")$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    start: int
    end: int
    newlines: int  # line breaks between the previous token and this one
    bare: str  # lower case, without a final . ? ! :
    is_num: bool
    is_word: bool
    is_cap: bool
    is_street: bool
    ends_sentence: bool


def _tok(text: str, start: int, end: int, newlines: int) -> _Tok:
    bare = text.rstrip(".?!:").lower()
    low = text.lower()
    suffix = _STREET_SUFFIX.search(low)
    is_street = low.rstrip(".") in STREET_WORDS or bool(
        suffix and len(low) > len(suffix.group()) + 2
    )
    return _Tok(
        text=text,
        start=start,
        end=end,
        newlines=newlines,
        bare=bare,
        is_num=bool(_NUM.match(text)),
        is_word=text[0].isalpha(),
        is_cap=text[0].isupper(),
        is_street=is_street,
        ends_sentence=text[-1] in "?!"
        or (text.endswith(".") and len(bare) > 3 and bare not in STREET_WORDS),
    )


def _is_street_word(tok: _Tok) -> bool:
    return tok.is_street


def _is_name_word(tok: _Tok) -> bool:
    """A word that may be part of a street name (not a sentence word, month or label)."""
    if not tok.is_word or tok.text.endswith(":"):
        return False
    low = tok.bare
    if low in _MONTHS or low in LABELS:
        return False
    return low not in SENTENCE_WORDS or low in PARTICLES


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    prev = 0
    for m in _TOKEN.finditer(text):
        value = m.group()
        stripped = value.lstrip(_JUNK)
        if not stripped or (value[0] in _JUNK and not any(c.isalnum() for c in stripped)):
            continue
        start = m.end() - len(stripped)
        out.append(_tok(stripped, start, m.end(), text.count("\n", prev, start)))
        prev = m.end()
    return out


def _street(toks: list[_Tok], i: int, *, cued: bool = False) -> int:
    """End index (exclusive) of a street line starting at token i, or i when there is none.
    `cued`: the text says an address follows ("the corner of ..."), so a name and a house number
    are enough."""
    n = len(toks)
    j = i
    lead = 0
    while j < n and lead < 2 and toks[j].is_num and not toks[j].text.endswith("."):
        if j > i and toks[j].newlines:
            break
        lead += 1
        j += 1
    words_start = j
    while j < n and j - words_start < 5 and _is_name_word(toks[j]):
        if (toks[j].newlines and (j > words_start or lead)) or toks[j].bare in UNIT_WORDS:
            break
        j += 1
        if toks[j - 1].ends_sentence:
            break
    words = toks[words_start:j]
    if not words:
        return i
    trail = j < n and not toks[j].newlines and toks[j].is_num
    end = j + 1 if trail else j
    # "130 St." after the house number
    street_after = trail and end < n and not toks[end].newlines and toks[end].is_street
    if street_after:
        end += 1
    capitalised = sum(w.is_cap for w in words)
    if lead:
        if any(w.is_street for w in words) or street_after:
            return end
        # numbers on both sides of a name, or two numbers before one ("9816 214 Pavlou Drandaki")
        if (trail and capitalised) or (lead == 2 and capitalised >= 2):
            return end
        return i
    if not trail:
        return i
    if cued and len(words) <= 3:
        return end
    # Without a leading house number the street name starts at a street word that comes first
    # ("Rue ...", "ul. ..."), or at most two words before a street word that ends it
    # ("Augsburger Strasse 36", "Hammarvägen 15").
    prefix = [k for k, w in enumerate(words) if w.bare in PREFIX_STREET_WORDS]
    if prefix:
        first = prefix[0]
    elif words[-1].is_street or street_after:
        first = max(0, len(words) - 3)
    else:
        return i
    return end if first == 0 else _street(toks, words_start + first)


def _unit(toks: list[_Tok], i: int) -> int:
    t = toks[i]
    j = i
    if t.bare in ("p.o", "po") and j + 1 < len(toks) and toks[j + 1].bare == "box":
        j += 1
    if toks[j].bare not in UNIT_WORDS:
        return i
    if j + 1 < len(toks) and not toks[j + 1].newlines and toks[j + 1].is_num:
        return j + 2
    return i


def _military(toks: list[_Tok], i: int) -> int:
    t = toks[i]
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    if nxt is None or nxt.newlines:
        return i
    if t.bare in MILITARY_UNITS and t.text.isupper() and nxt.is_num:
        return i + 2
    if t.bare in MILITARY_POST and nxt.bare in MILITARY_REGIONS:
        if i + 2 < len(toks) and toks[i + 2].is_num:
            return i + 3
        return i + 2
    if t.bare in SHIP_PREFIXES and t.text.isupper() and nxt.is_cap:
        return i + 2
    return i


def _phone_line(toks: list[_Tok], j: int) -> bool:
    """The line starting at token j carries a phone number ("416 60 039 office")."""
    digits = letters = 0
    for t in toks[j:]:
        if t is not toks[j] and t.newlines:
            break
        digits += sum(c.isdigit() for c in t.text)
        letters += sum(c.isalpha() for c in t.text)
    return digits >= 7 and letters <= 10


def _anchor(toks: list[_Tok], i: int) -> tuple[int, bool]:
    """(end, is_street) of an anchor at token i; end == i when none."""
    end = _street(toks, i)
    if end > i:
        return end, True
    end = _military(toks, i)
    if end > i:
        return end, True
    return _unit(toks, i), False


def _continuation(toks: list[_Tok], j: int, lowercase: bool) -> tuple[int, bool]:
    """(end, street_found) of the address block that continues at token j."""
    street = False
    line_words = 0
    blank_lines = 0
    while j < len(toks):
        t = toks[j]
        if t.newlines:
            if t.newlines > 2 or (t.newlines == 2 and blank_lines) or _phone_line(toks, j):
                break
            blank_lines += t.newlines == 2
            line_words = 0
        if t.text in (",", ";"):
            j += 1
            continue
        end, is_street = _anchor(toks, j)
        if end > j:
            street = street or is_street
            j = end
            if toks[j - 1].text[-1] in "?!":
                break
            continue
        if t.text.endswith(":") or (t.is_word and t.bare in LABELS and t.is_cap):
            break
        ok = (
            bool(_ZIP.match(t.text))
            or bool(_CODE.match(t.text))
            or bool(_PAREN.match(t.text))
            or (t.is_word and _is_name_word(t) and (t.is_cap or lowercase or t.bare in PARTICLES))
        )
        code = bool(_CODE.match(t.text))
        if not ok or line_words >= 4 or (t.is_word and t.bare in SENTENCE_WORDS and not code):
            break
        # a particle must be followed by the rest of the name on the same line
        if t.is_word and t.bare in PARTICLES and not t.is_cap:
            nxt = toks[j + 1] if j + 1 < len(toks) else None
            if nxt is None or nxt.newlines or not nxt.is_word:
                break
        line_words += 1
        j += 1
        if t.ends_sentence or t.text[-1] in "?!":
            break
    return j, street


_CORNER = re.compile(r"(?i:(?:\bthe\s+)?\bcorner\s+of\s+)$")
_AND_STREET = re.compile(r"(?i:\s+(?:and|&)\s+)((?:[^\W\d_][\w'\u2019.\-]*[ \t]*){1,3})")


def _intersection(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen "[the corner of] Main St 4 [and Elm Road]" to the whole intersection."""
    corner = _CORNER.search(text[max(0, start - 20) : start])
    if not corner:
        return start, end
    start -= len(corner.group())
    m = _AND_STREET.match(text, end)
    if m:
        words = m.group(1).split()
        lowercase = text[start:end].islower()
        kept = []
        for w in words:
            bare = w.rstrip(".,?!").lower()
            if bare in SENTENCE_WORDS or not (w[0].isupper() or lowercase):
                break
            kept.append(w)
        if kept:
            end = m.start(1) + len(" ".join(kept))
            if text[m.start(1) : end] != " ".join(kept):
                end = m.start(1) + len(kept[0])
            while text[end - 1] in ".,?!" and not _keeps_dot(text, start, end):
                end -= 1
    return start, end


def find_addresses(text: str) -> list[Span]:
    """ADDRESS spans: street lines with what belongs to them, units, military addresses."""
    toks = _tokens(text)
    out: list[Span] = []
    i = 0
    while i < len(toks):
        end, street = _anchor(toks, i)
        if end == i and _CORNER.search(text[max(0, toks[i].start - 20) : toks[i].start]):
            end = _street(toks, i, cued=True)
            street = end > i
        if end == i:
            i += 1
            continue
        lowercase = not any(c.isupper() for c in text[toks[i].start : toks[end - 1].end])
        end, more = _continuation(toks, end, lowercase)
        street = street or more
        # drop trailing commas and the sentence's full stop
        while end > i + 1 and toks[end - 1].text in (",", ";"):
            end -= 1
        start_char, end_char = toks[i].start, toks[end - 1].end
        while (
            end_char > start_char
            and text[end_char - 1] in ".?!:,;"
            and not _keeps_dot(text, start_char, end_char)
        ):
            end_char -= 1
        start_char, end_char = _intersection(text, start_char, end_char)
        out.append(Span("ADDRESS", start_char, end_char, STREET_SCORE if street else UNIT_SCORE))
        i = end
    return out


def _keeps_dot(text: str, start: int, end: int) -> bool:
    """An abbreviation's dot belongs to the address ("St.", "Apt."), a full stop does not."""
    if text[end - 1] != ".":
        return False
    last = text[start:end].split()[-1].rstrip(".").lower()
    return last in STREET_WORDS or last in UNIT_WORDS or len(last) <= 2
