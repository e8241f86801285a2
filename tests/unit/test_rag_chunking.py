"""Structure-aware chunking: boundaries, sizes, overlap, ordinals, hashes, and a property test."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.rag.chunking import Chunk, chunk, content_hash
from core.rag.extract import ExtractedDocument, Section


def doc(*sections: Section) -> ExtractedDocument:
    return ExtractedDocument("t", "text/plain", list(sections))


def squeeze(text: str) -> str:
    return "".join(text.split())


def is_subsequence(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


def sentences(n: int, prefix: str = "S") -> str:
    return " ".join(
        f"{prefix}{i} says the quick brown fox jumps over the lazy dog." for i in range(n)
    )


def test_small_sections_become_one_chunk_each_with_metadata() -> None:
    chunks = chunk(
        doc(
            Section("Alpha text.", 1, ("Chapter I",)),
            Section("   ", 1, ("Empty",)),
            Section("Beta text.", 2, ("Chapter I", "Article 2")),
        )
    )
    assert [(c.text, c.page, c.heading_path, c.ordinal, c.section_index) for c in chunks] == [
        ("Alpha text.", 1, ("Chapter I",), 0, 0),
        ("Beta text.", 2, ("Chapter I", "Article 2"), 1, 2),
    ]


def test_never_crosses_a_section_boundary() -> None:
    first = sentences(30, "A")
    second = sentences(30, "B")
    chunks = chunk(
        doc(Section(first, None, ("One",)), Section(second, None, ("Two",))),
        max_chars=300,
        overlap_chars=60,
    )
    for c in chunks:
        if c.heading_path == ("One",):
            assert "B" not in c.text.replace("By", "")
            assert squeeze(c.text) in squeeze(first)
        else:
            assert squeeze(c.text) in squeeze(second)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert {c.heading_path for c in chunks} == {("One",), ("Two",)}


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paragraphs = [sentences(3, f"P{i}-") for i in range(6)]  # about 170 characters each
    text = "\n\n".join(paragraphs)
    chunks = chunk(doc(Section(text)), max_chars=400, overlap_chars=0)
    for c in chunks:
        assert len(c.text) <= 400
        for part in c.text.split("\n\n"):
            assert part in paragraphs
    assert "\n\n".join(c.text for c in chunks) == text


def test_long_paragraph_split_on_sentences_with_overlap() -> None:
    text = sentences(40)
    chunks = chunk(doc(Section(text)), max_chars=500, overlap_chars=120)
    assert len(chunks) > 3
    for c in chunks:
        assert len(c.text) <= 500
        assert c.text.startswith("S") and c.text.endswith("dog.")  # sentence boundaries
    for before, after in itertools.pairwise(chunks):
        overlap = _shared_overlap(before.text, after.text)
        assert 40 <= len(overlap) <= 120
        assert overlap.startswith("S")


def _shared_overlap(before: str, after: str) -> str:
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return after[:size]
    return ""


def test_monster_sentence_is_hard_cut() -> None:
    text = "x" * 2500
    chunks = chunk(doc(Section(text)), max_chars=1000, overlap_chars=100)
    assert all(len(c.text) <= 1000 for c in chunks)
    assert all(set(c.text) == {"x"} for c in chunks)
    assert sum(len(c.text) for c in chunks) >= 2500
    # consecutive hard cuts still overlap
    assert len(chunks) == 3


def test_long_words_fall_back_to_word_boundaries() -> None:
    text = " ".join(f"word{i:04d}" for i in range(400))  # no sentence ends, no newlines
    chunks = chunk(doc(Section(text)), max_chars=200, overlap_chars=50)
    for c in chunks:
        assert len(c.text) <= 200
        assert c.text.startswith("word") and len(c.text.split()[-1]) == 8  # whole words only
    assert chunks[0].text.split()[0] == "word0000"
    assert chunks[-1].text.split()[-1] == "word0399"


def test_no_overlap_when_zero() -> None:
    text = sentences(20)
    chunks = chunk(doc(Section(text)), max_chars=300, overlap_chars=0)
    assert " ".join(c.text for c in chunks) == text


def test_hashes_equal_for_equal_text_and_normalised() -> None:
    chunks = chunk(doc(Section("Same words here."), Section("Same words here."), Section("Other.")))
    assert chunks[0].content_hash == chunks[1].content_hash != chunks[2].content_hash
    assert content_hash("a  b\n c ") == content_hash("a b c")
    assert content_hash("ﬁle") == content_hash("file")  # NFKC ligature
    assert len(chunks[0].content_hash) == 64


def test_deterministic() -> None:
    d = doc(Section(sentences(50), 3, ("H",)), Section("\n\n".join([sentences(5)] * 4)))
    assert chunk(d, max_chars=350, overlap_chars=80) == chunk(d, max_chars=350, overlap_chars=80)


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 0), (100, 100), (100, -1), (10, 50)])
def test_invalid_sizes_rejected(max_chars: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk(doc(Section("x")), max_chars=max_chars, overlap_chars=overlap)


def test_default_sizes() -> None:
    chunks = chunk(doc(Section(sentences(100))))
    assert all(len(c.text) <= 1200 for c in chunks)
    assert all(isinstance(c, Chunk) for c in chunks)


_words = st.text(alphabet=st.sampled_from(list("abcdefghij.!? \n\t,;é世")), min_size=0, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(_words, min_size=0, max_size=40),
    joiners=st.lists(st.sampled_from([" ", "\n", "\n\n", ". ", "", "\n \n"]), min_size=1),
    max_chars=st.integers(min_value=1, max_value=300),
    overlap_ratio=st.floats(min_value=0, max_value=0.9),
)
def test_property_size_and_coverage(
    parts: list[str], joiners: list[str], max_chars: int, overlap_ratio: float
) -> None:
    text = "".join(p + joiners[i % len(joiners)] for i, p in enumerate(parts))
    overlap = min(int(max_chars * overlap_ratio), max_chars - 1)
    chunks = chunk(doc(Section(text, 1, ("H",))), max_chars=max_chars, overlap_chars=overlap)
    whole = squeeze(text)
    assert all(0 < len(c.text) <= max_chars for c in chunks)
    assert all(c.text == c.text.strip() for c in chunks)
    assert all(squeeze(c.text) in whole for c in chunks)  # contiguous content, nothing invented
    assert is_subsequence(whole, "".join(squeeze(c.text) for c in chunks))  # nothing lost
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert bool(chunks) == bool(whole)
