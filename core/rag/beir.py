"""Loading a BEIR-format evaluation set.

    DIR/corpus.jsonl        {"_id": ..., "title": ..., "text": ...} per line
    DIR/queries.jsonl       {"_id": ..., "text": ...} per line
    DIR/qrels/<split>.tsv   header `query-id  corpus-id  score`, then one judgement per line

Ids are kept as strings. Blank lines are skipped; anything else that does not parse raises
`ValidationError` naming the file and the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ValidationError


@dataclass(frozen=True)
class BeirDocument:
    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and body joined by a space, the usual BEIR input to a retriever."""
        return f"{self.title} {self.text}".strip()


@dataclass
class BeirDataset:
    corpus: dict[str, BeirDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def judged_queries(self) -> dict[str, str]:
        """Queries that have at least one relevant (score > 0) judgement, in qrels order."""
        return {
            qid: self.queries[qid]
            for qid, judged in self.qrels.items()
            if qid in self.queries and any(rel > 0 for rel in judged.values())
        }


def _need_file(path: Path) -> None:
    if not path.is_file():
        raise ValidationError(f"BEIR dataset file is missing: {path}")


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    _need_file(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        handle = path.open(encoding="utf-8")
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationError(
                        f"{path} line {number}: not valid JSON ({exc.msg})."
                    ) from None
                if not isinstance(row, dict):
                    raise ValidationError(f"{path} line {number}: expected a JSON object.")
                rows.append((number, row))
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc.reason}).") from exc
    return rows


def _id(path: Path, number: int, row: dict[str, Any]) -> str:
    value = row.get("_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise ValidationError(f'{path} line {number}: missing or invalid "_id".')
    return str(value)


def _text(path: Path, number: int, row: dict[str, Any], key: str, required: bool) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f'{path} line {number}: "{key}" must be a string.')
    return value


def load_corpus(path: Path) -> dict[str, BeirDocument]:
    corpus: dict[str, BeirDocument] = {}
    for number, row in _jsonl(path):
        doc_id = _id(path, number, row)
        if doc_id in corpus:
            raise ValidationError(f"{path} line {number}: duplicate _id {doc_id!r}.")
        title = _text(path, number, row, "title", required=False)
        text = _text(path, number, row, "text", required=True)
        corpus[doc_id] = BeirDocument(doc_id, title, text)
    if not corpus:
        raise ValidationError(f"{path}: no documents.")
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, row in _jsonl(path):
        query_id = _id(path, number, row)
        if query_id in queries:
            raise ValidationError(f"{path} line {number}: duplicate _id {query_id!r}.")
        queries[query_id] = _text(path, number, row, "text", required=True)
    if not queries:
        raise ValidationError(f"{path}: no queries.")
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    _need_file(path)
    qrels: dict[str, dict[str, int]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc.reason}).") from exc
    header_seen = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        if not header_seen:
            header_seen = True
            if [c.strip().lower() for c in cells] != ["query-id", "corpus-id", "score"]:
                raise ValidationError(
                    f"{path} line {number}: expected the header 'query-id<TAB>corpus-id<TAB>"
                    f"score', got {line.strip()!r}."
                )
            continue
        if len(cells) != 3:
            raise ValidationError(
                f"{path} line {number}: expected 3 tab-separated columns, got {len(cells)}."
            )
        query_id, doc_id, raw = (c.strip() for c in cells)
        if not query_id or not doc_id:
            raise ValidationError(f"{path} line {number}: empty query-id or corpus-id.")
        try:
            score = int(raw)
        except ValueError:
            raise ValidationError(
                f"{path} line {number}: score must be an integer, got {raw!r}."
            ) from None
        qrels.setdefault(query_id, {})[doc_id] = score
    if not header_seen:
        raise ValidationError(f"{path}: empty qrels file (no header).")
    return qrels


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Load corpus, queries and the qrels of `split`; judgements that name an unknown query or
    document are an error (they would silently distort every metric)."""
    root = Path(directory)
    if not root.is_dir():
        raise ValidationError(f"BEIR dataset directory not found: {root}")
    corpus = load_corpus(root / "corpus.jsonl")
    queries = load_queries(root / "queries.jsonl")
    qrels_path = root / "qrels" / f"{split}.tsv"
    qrels = load_qrels(qrels_path)
    for query_id, judged in qrels.items():
        if query_id not in queries:
            raise ValidationError(f"{qrels_path}: query-id {query_id!r} is not in queries.jsonl.")
        for doc_id in judged:
            if doc_id not in corpus:
                raise ValidationError(
                    f"{qrels_path}: corpus-id {doc_id!r} (query {query_id!r}) is not in "
                    "corpus.jsonl."
                )
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)
