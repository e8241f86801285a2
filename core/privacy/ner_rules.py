"""Rules around the statistical NER: what spaCy's entities become, and names it misses.

The bundled `en_core_web_sm` is small and was trained on news; on support tickets, contact blocks
and names from outside the anglophone world it makes three kinds of mistakes that these rules
address (each measured on the tuning part of bench/pii.py's data, then checked on held-out
sentence templates):

- Two- or three-word personal names come out as ORG ("Antti Poutiainen", "Ana Novak"). An ORG
  without any organisation word whose words all look like name parts is reported as PERSON; a
  one-word ORG without such a word is too ambiguous to report.
- DATE labels land on house numbers, postcodes and durations ("4966", "a year", "this month").
  Only dates that pin a moment down (a year, a month or weekday name, a numeric date, a clock
  time) are reported: a duration is not personal data.
- Names the model never tags are found by pattern: after a cue ("my name is", "Mr.", "Hi",
  "calls me"), including lower-case ones; alone on the first line of a contact block; as
  transcript speakers; with a middle initial; starting with a common given name
  (`core.privacy.first_names`). Organisations likewise by legal form ("Acme d.o.o."), firm
  pattern ("Clark, Romero and Hall") or employer cue ("I work for ...").

Pure functions: the Presidio adapter (`core.privacy.recognizers`) feeds them spaCy's entities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.privacy.addresses import STREET_WORDS
from core.privacy.first_names import GIVEN_NAMES
from core.privacy.spans import Span


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NER_SCORE = 0.85
RELABELLED_SCORE = 0.7
# A cue is stronger evidence than the small model's label for the same words ("My name is Ján"
# where spaCy says GPE), so cue-found names outrank NER_SCORE in overlap resolution.
CUE_SCORE = 0.9
INTRO_SCORE = 0.86
SPEAKER_SCORE = 0.86
INITIAL_SCORE = 0.8
GIVEN_FULL_SCORE = 0.8
GIVEN_ALONE_SCORE = 0.6
ORG_SCORE = 0.6
DATE_SCORE = 0.6

# Words that mark an organisation's name (legal forms and common name heads). General knowledge
# of company naming, not a list of this data set's organisations.
ORG_WORDS = _words(
    """inc inc. incorporated ltd ltd. limited llc llp plc corp corp. corporation co co. company
    companies gmbh ag sa s.a. sas srl s.r.l. spa s.p.a. bv nv oy ab asa as a/s aps kg ohg d.o.o.
    doo d.d. sp. z.o.o. kft zrt group holding holdings partners associates associated bank
    banking capital fund funds trust insurance assurance financial finance investments technologies
    technology tech systems solutions services service software labs lab laboratories networks
    network media communications telecom digital data analytics consulting consultants
    international global industries industrial enterprises ventures agency studio studios
    foundation institute institution university college school academy hospital clinic health
    healthcare pharma pharmaceuticals bioscience biosciences sciences club society association
    union council committee ministry department office bureau authority commission government
    church orchestra band records music entertainment press publishing news times journal
    magazine airlines airways motors automotive energy power electric oil gas mining markets
    market exchange transit transport logistics shipping foods restaurant hotel hotels resorts
    store stores shop retail mart marketplace online web net com reports"""
)

HONORIFICS = r"(?:mr|mrs|ms|mx|dr|prof|sir|dame|madam|mme|mlle|miss|lady|lord|herr|frau)"

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_SPECIFIC_DATE = re.compile(
    rf"\b(?:1[5-9]\d\d|20\d\d)s?\b|\b(?:{_MONTHS})\b\.?|\b(?:{_WEEKDAYS})s?\b|"
    r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\b\d{1,2}:\d{2}\b|\b\d{1,2}(?:st|nd|rd|th)\b",
    re.IGNORECASE,
)
# A house number or postcode that looks like a year: digits only, with more digits or an
# address word right beside it.
_NUMBER_ONLY = re.compile(r"^\d+$")

_WORD = re.compile(r"[^\W\d_][\w'\u2019.\-]*|\d+", re.UNICODE)
_NAME_PART = re.compile(
    r"^(?:[A-ZÀ-ÖØ-ÞĀ-\u017f][^\W\d_]+(?:[-'\u2019][A-Za-zÀ-ÿ][^\W\d_]*)?|[A-Z]\.?)$"
)
_POSSESSIVE = re.compile(r"['\u2019]s$")
_HONORIFIC_WORD = re.compile(rf"^(?:{HONORIFICS})\.?$", re.IGNORECASE)
_LEADING_TITLE = re.compile(rf"^(?:{HONORIFICS})\.?\s+", re.IGNORECASE)
_ADDRESS_TAIL = re.compile(
    r"\s+(?:apt|apartment|suite|ste|unit|flat|box|po|p\.o\.)\.?$", re.IGNORECASE
)

# Words that end a cue-introduced name (they start the rest of the sentence).
STOP_WORDS = _words(
    """a an the and or but nor so yet for of to in on at by with from as is are was were be been
    am i me my mine you your he him his she her it its we us our they them their this that these
    those who whom whose which what when where why how here there not no yes please thanks thank
    if then than too very just also only all any some every each both either neither about into
    over under after before since until while because though although again still already soon
    now today tomorrow yesterday ok okay hi hello dear sir madam will would can could should may
    might must shall do does did have has had get got let let's say says said"""
)


def _is_name_part(token: str) -> bool:
    return bool(_NAME_PART.match(token)) and token.lower() not in STOP_WORDS


def looks_like_name(value: str, *, max_words: int = 4) -> bool:
    """Two to `max_words` capitalised name parts (initials allowed), no organisation word."""
    words = value.replace("\n", " ").split()
    if not 2 <= len(words) <= max_words:
        return False
    if any(w.lower().strip(",") in ORG_WORDS for w in words):
        return False
    if not all(_is_name_part(w.strip(",")) for w in words):
        return False
    # at least two real words: "J. K." is not a name
    return sum(len(w.strip(".")) > 1 for w in words) >= 2


def _trim_person(text: str, start: int, end: int) -> tuple[int, int] | None:
    value = text[start:end]
    m = _LEADING_TITLE.match(value)
    if m:
        start += m.end()
    value = text[start:end]
    m2 = _POSSESSIVE.search(value)
    if m2:
        end -= len(m2.group())
    value = text[start:end]
    m3 = _ADDRESS_TAIL.search(value)
    if m3:
        end -= len(m3.group())
    # a name never runs across a line break: keep the first line
    nl = text.find("\n", start, end)
    if nl != -1:
        end = nl
    while end > start and not text[end - 1].isalnum() and text[end - 1] != ".":
        end -= 1
    if end - start < 2:
        return None
    return start, end


def _date_is_specific(value: str) -> bool:
    return bool(_SPECIFIC_DATE.search(value))


def refine_entities(text: str, entities: Iterable[tuple[str, int, int]]) -> list[Span]:
    """spaCy's (label, start, end) entities as the project's typed, scored spans."""
    out: list[Span] = []
    for label, start, end in entities:
        value = text[start:end]
        if label in ("PERSON", "PER"):
            trimmed = _trim_person(text, start, end)
            if trimmed:
                out.append(Span("PERSON", *trimmed, NER_SCORE))
        elif label == "ORG":
            out.extend(_org(text, start, end))
        elif label in ("GPE", "LOC", "FAC"):
            for s, e in _lines(text, start, end):
                if any(c.isalpha() for c in text[s:e]):
                    out.append(Span("LOCATION", s, e, NER_SCORE))
        elif label == "NORP":
            if value[:1].isalpha():
                out.append(Span("NRP", start, end, NER_SCORE))
        elif label in ("DATE", "TIME") and _is_reportable_date(text, start, end):
            out.append(Span("DATE_TIME", start, end, DATE_SCORE))
    return out


def _is_reportable_date(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    if not _date_is_specific(value):
        return False
    # a bare number like a year but next to other digits is a house number or a postcode
    return not (_NUMBER_ONLY.match(value) and _beside_digits(text, start, end))


def _beside_digits(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    return any(c.isdigit() for c in before + after)


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = start
    for piece in text[start:end].split("\n"):
        s, e = pos, pos + len(piece)
        pos = e + 1
        while s < e and not text[s].isalnum():
            s += 1
        while e > s and not (text[e - 1].isalnum() or text[e - 1] in ".)"):
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def _org(text: str, start: int, end: int) -> list[Span]:
    out: list[Span] = []
    for s, e in _lines(text, start, end):
        value = text[s:e]
        m = _POSSESSIVE.search(value)
        if m:
            e -= len(m.group())
            value = text[s:e]
        words = [w.lower().strip(",.") for w in value.split()]
        # "Comedy, Kids & Family", "EMŠO 0101006500006": genre lists and labelled numbers
        if "&" in value or any(w.isdigit() for w in words):
            continue
        words_dot = [w.lower().strip(",") for w in value.split()]
        if any(w in ORG_WORDS for w in words) or any(w in ORG_WORDS for w in words_dot):
            out.append(Span("ORGANIZATION", s, e, ORG_SCORE))
        elif looks_like_name(value, max_words=3):
            trimmed = _trim_person(text, s, e)
            if trimmed:
                out.append(Span("PERSON", *trimmed, RELABELLED_SCORE))
        elif len(words) >= 2:
            out.append(Span("ORGANIZATION", s, e, ORG_SCORE))
    return out


# --- names by cue ---------------------------------------------------------------------------

_NAME_RUN = r"([^\W\d_][\w'\u2019\-]*(?:[ \t]+(?:[A-Za-z]\.?(?!\w)|[^\W\d_][\w'\u2019\-]*)){0,3})"
# Cues after which a name follows, case-insensitive; the name may be lower case.
_STRONG_CUE = re.compile(
    r"(?i:\b(?:my\s+name\s+is|name\s+is|named|name\s*[:?]|called|calls\s+me|call\s+me|"
    rf"(?<!\w){HONORIFICS}\.?)[ \t]+)" + _NAME_RUN,
    re.UNICODE,
)
# Cues that also precede ordinary words ("Hi there", "I'm glad"): the name must be capitalised.
_GREETING_CUE = re.compile(
    r"(?i:\b(?:hi|hello|hey|dear|said|says|asked|replied|shouted\s+at|"
    r"(?:directed|written|produced|performed|composed|sung|painted|signed)\s+by:?)[ \t,]+)"
    + _NAME_RUN,
    re.UNICODE,
)
# Self-introductions also precede organisations ("This is Google"): two name parts needed.
_INTRO_CUE = re.compile(
    r"(?i:\b(?:i\s+am|i'm|this\s+is|it's|it\s+is)[ \t]+)" + _NAME_RUN,
    re.UNICODE,
)


def _name_from_run(run: str, *, capitalised: bool) -> str:
    words: list[str] = []
    for w in run.split():
        if not words and _HONORIFIC_WORD.match(w):
            return ""  # "Dear Mr. Horvat": the honorific's own cue reports the name
        core = w.rstrip(',;:!?"')
        bare = core.rstrip(".")
        possessive = _POSSESSIVE.search(bare)
        if possessive:
            bare = bare[: possessive.start()]
        if not bare or bare.lower() in STOP_WORDS or bare.lower() in ORG_WORDS:
            break
        initial = len(bare) == 1
        if capitalised and not _is_name_part(core if initial else bare):
            break
        words.append(core if initial else bare)
        # punctuation, a possessive or a full stop after a word ends the name
        if core != w or possessive or (core.endswith(".") and not initial):
            break
    return " ".join(words)


def names_by_cue(text: str) -> list[Span]:
    """PERSON spans introduced by a cue phrase."""
    out: list[Span] = []
    for cue, capitalised, min_words, score in (
        (_STRONG_CUE, False, 1, CUE_SCORE),
        (_GREETING_CUE, True, 1, CUE_SCORE),
        (_INTRO_CUE, True, 2, INTRO_SCORE),
    ):
        for m in cue.finditer(text):
            name = _name_from_run(m.group(1), capitalised=capitalised)
            if not name:
                continue
            words = name.split()
            if len(words) < min_words:
                continue
            # a lone initial or a trailing initial without its surname is not a name
            while words and len(words[-1].rstrip(".")) == 1:
                words.pop()
            if not words:
                continue
            name = " ".join(words)
            start = m.start(1)
            if text[start : start + len(name)] != name:
                continue
            out.append(Span("PERSON", start, start + len(name), score))
    return out


_LINE_PREFIX = re.compile(r"^[\s>*•·\-?#|]*")


def leading_name_line(text: str) -> list[Span]:
    """The first line of a multi-line block when it is a bare personal name (letterheads,
    signatures, address labels)."""
    if "\n" not in text.strip():
        return []
    first = text.lstrip("\n")
    offset = len(text) - len(first)
    line = first.split("\n", 1)[0]
    prefix = _LINE_PREFIX.match(line)
    skip = prefix.end() if prefix else 0
    value = line[skip:].rstrip()
    if not value:
        return []
    candidate = value if not value.islower() else value.title()
    if looks_like_name(candidate, max_words=4):
        start = offset + skip
        return [Span("PERSON", start, start + len(value), RELABELLED_SCORE)]
    return []


# Speaker labels of a transcript ("Ella: What a wife.\nDestiny: Remember me?"), counted only when
# two or more lines start that way, and never for the usual field labels.
_SPEAKER = re.compile(
    r"^[\s>*•\-]*([^\W\d_][\w'\u2019\-]*(?:[ \t][^\W\d_][\w'\u2019\-]*)?)[ \t]*:", re.M
)
FIELD_LABELS = _words(
    """name address phone mobile desk fax email e-mail website web url when where date time
    note notes subject answer question q a re fw fwd warning error bot user agent customer
    client from to cc bcc title zip tel id ref total amount price status comment comments
    summary description reason result tip update info personal info directed by written by
    produced by genre category tags location company position role job occupation dob age
    gender sex city country state street postcode code account iban card number"""
)


def _speaker_label(label: str) -> bool:
    words = label.split()
    if label.lower() in FIELD_LABELS or words[0].lower() in FIELD_LABELS:
        return False
    return all(w[0].isupper() for w in words) or label.islower()


def speaker_names(text: str) -> list[Span]:
    found = [m for m in _SPEAKER.finditer(text) if _speaker_label(m.group(1))]
    if len(found) < 2:
        return []
    return [Span("PERSON", m.start(1), m.end(1), SPEAKER_SCORE) for m in found]


# Organisations by form and cue. "Clark, Romero and Hall" (three bare surnames) is how law,
# accounting and consulting firms are named; a list of three people in running text comes with
# first names, or after a colon ("our founders: Eklund, Michael and Hodge").
_FIRM = re.compile(
    r"\b([A-Z][\w'\u2019\-]+, [A-Z][\w'\u2019\-]+,? (?:and|&) [A-Z][\w'\u2019\-]+"
    r"|[A-Z][\w'\u2019\-]+ (?:and|&) (?:Sons|Co\.?|Partners|Associates))\b"
)
_EMPLOYER_CUE = re.compile(
    r"(?i:\b(?:work(?:s|ed|ing)?\s+(?:for|at)|employed\s+(?:by|at)|employee\s+of|"
    r"(?:ceo|cto|cfo|coo|founder|co-founder|president|chairman|director)\s+(?:of|at))[ \t]+)"
    r"([A-Z][\w'\u2019&.\-]*(?:[ \t]+[A-Z][\w'\u2019&.\-]*){0,3})"
)
FIRM_SCORE = 0.88
# "Acme d.o.o.", "Globex Ltd", "Initech GmbH": up to four capitalised words and a legal form.
_LEGAL_FORM = re.compile(
    r"\b((?:[A-Z][\w&\u2019'\-]*[ \t]+){0,3}[A-Z][\w&\u2019'\-]*,?[ \t]+"
    r"(?:Inc\.|Inc\b|Ltd\.|Ltd\b|LLC\b|LLP\b|GmbH\b|AG\b|plc\b|PLC\b|Corp\.|Corp\b|"
    r"Co\.|d\.o\.o\.|d\.d\.|s\.p\.|S\.A\.|SA\b|S\.r\.l\.|S\.p\.A\.|Oy\b|AB\b|ASA\b|A/S|"
    r"BV\b|B\.V\.|NV\b|N\.V\.|Kft\.|Zrt\.|SE\b|Pty\b))"
)


def organisations_by_form(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _FIRM.finditer(text):
        before = text[max(0, m.start() - 3) : m.start()]
        if ":" in before:
            continue
        out.append(Span("ORGANIZATION", m.start(1), m.end(1), FIRM_SCORE))
    for m in _LEGAL_FORM.finditer(text):
        words = m.group(1).split()
        # a leading sentence word is not part of the name ("At Acme Ltd", "The Globex Corp.")
        skip = 0
        while skip < len(words) - 2 and words[skip].lower() in STOP_WORDS:
            skip += 1
        start = m.start(1) + m.group(1).index(words[skip]) if skip else m.start(1)
        out.append(Span("ORGANIZATION", start, m.end(1), FIRM_SCORE))
    for m in _EMPLOYER_CUE.finditer(text):
        value = re.split(r"\.\s", m.group(1), maxsplit=1)[0].rstrip(".")
        out.append(Span("ORGANIZATION", m.start(1), m.start(1) + len(value), FIRM_SCORE))
    return out


# "Csanád P Gere", "Vide A. Persson": first name, middle initial, surname is a personal name
# whatever the language; the model misses many of them.
_WITH_INITIAL = re.compile(
    r"(?<![\w.])([A-ZÀ-ÖØ-Þ][^\W\d_]+[ \t]+[A-ZÀ-ÖØ-Þ]\.?[ \t]+[A-ZÀ-ÖØ-Þ][^\W\d_]{2,})(?![\w])"
)


def names_with_initial(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _WITH_INITIAL.finditer(text):
        words = m.group(1).split()
        if words[0].lower() in STOP_WORDS or words[-1].lower() in ORG_WORDS:
            continue
        if words[0].lower() in ORG_WORDS:
            continue
        out.append(Span("PERSON", m.start(1), m.end(1), INITIAL_SCORE))
    return out


# A known given name followed by a surname ("Ana Novak", "Marko Kovač", "Janez M. Horvat"), or
# alone. Tokens are capitalised words and initials on one line.
_CAP_TOKEN = re.compile(r"[A-ZÀ-ÖØ-Þ\u0100-\u017f][^\W\d_]*(?:[-\u2019'][A-Z][^\W\d_]*)?\.?")


def _surname_like(token: str) -> bool:
    bare = token.rstrip(".")
    if len(bare) == 1:
        return True  # an initial
    low = bare.lower()
    return (
        not token.endswith(".")
        and not bare.isupper()
        and low not in STOP_WORDS
        and low not in ORG_WORDS
        and low not in STREET_WORDS
    )


def names_by_given_name(text: str) -> list[Span]:
    out: list[Span] = []
    tokens = list(_CAP_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        m = tokens[i]
        start = m.start()
        if m.group().rstrip(".") not in GIVEN_NAMES or (
            start > 0 and (text[start - 1].isalnum() or text[start - 1] in "@.-_/")
        ):
            i += 1
            continue
        end, j, surnames = m.end(), i + 1, 0
        if m.group().endswith("."):
            end -= 1  # "... with Ana." ends the sentence
        while j < len(tokens) and j - i <= 3:
            gap = text[end : tokens[j].start()]
            nxt = tokens[j].group()
            if gap not in (" ", "\t") or not _surname_like(nxt):
                break
            end = tokens[j].end()
            surnames += len(nxt.rstrip(".")) > 1
            j += 1
            if nxt.endswith(".") and len(nxt) > 2:
                end -= 1
                break
        # a trailing initial without its surname is not part of the name
        while end > start and text[end - 1] == "." and text[end - 3 : end - 2] == " ":
            end -= 3
        if surnames:
            out.append(Span("PERSON", start, end, GIVEN_FULL_SCORE))
        elif not text[m.end() : m.end() + 2].strip()[:1].isdigit():
            out.append(Span("PERSON", start, start + len(m.group().rstrip(".")), GIVEN_ALONE_SCORE))
        i = j
    return out
