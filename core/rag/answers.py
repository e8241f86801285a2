"""Cited answers: retrieve, prompt the model with numbered passages, stream its answer through the
LLM gateway (router, ledger and budgets apply), link its [n] citations to the passages, and log
the question. When retrieval finds nothing relevant enough, the model is not asked at all.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission, has_permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import DomainError, NotFound, PermissionDenied, ValidationError
from core.llm import gateway
from core.llm.types import ChatRequest, ChatResult, Message
from core.rag.collections import load_for, may_access
from core.rag.models import Collection, QueryLog
from core.rag.retrieval import Filters, Mode, Passage, Retrieval, search
from core.text import clean_text

DEFAULT_ALIAS = "chat"
TEAM = "knowledge-base"  # the ledger's team for answer generation (spend shows per team)
NOT_FOUND = (
    "I could not find anything in '{name}' relevant enough to answer this. Try other words, "
    "remove filters, or ask in another collection."
)
SYSTEM_PROMPT = (
    "You answer questions for staff of a company using only the numbered passages you are "
    "given. Cite the passage numbers you used in square brackets, like [1] or [2][3], right "
    "after the sentence they support. If the passages do not contain the answer, say that the "
    "documents do not say, and do not guess. Be brief: two or three sentences."
)
_CITATION = re.compile(r"\[(\d{1,2})\]")
Status = Literal["answered", "not_found", "error"]


@dataclass(frozen=True)
class Answer:
    query_id: int
    text: str
    status: Status
    passages: list[Passage]
    cited: list[int]  # passage numbers the answer cites, in first-cited order
    embed_ms: float
    search_ms: float
    generate_ms: float
    cost_micros: int
    deployment: str
    model: str
    error: str = ""

    @property
    def citations(self) -> list[Passage]:
        by_number = {p.number: p for p in self.passages}
        return [by_number[n] for n in self.cited if n in by_number]


@dataclass(frozen=True)
class AnswerEvent:
    """`retrieval` first (passages to show while the model writes), then `delta`s, then the
    final `answer`."""

    retrieval: Retrieval | None = None
    delta: str = ""
    answer: Answer | None = None


def citations_in(text: str, passages: int) -> list[int]:
    """Passage numbers cited as [n] in `text`, first-cited order, only those that exist."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= passages and n not in seen:
            seen.append(n)
    return seen


def build_prompt(question: str, passages: list[Passage]) -> ChatRequest:
    blocks = []
    for p in passages:
        blocks.append(f"[{p.number}] ({p.location})\n{p.text}")
    user = (
        "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}\n"
        "Answer from the passages, citing them as [n]:"
    )
    return ChatRequest(
        messages=(Message("system", SYSTEM_PROMPT), Message("user", user)),
        temperature=0.1,
        max_tokens=300,
    )


def ask_stream(
    actor: Actor,
    collection_id: int,
    question: str,
    *,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    alias: str = DEFAULT_ALIAS,
) -> Iterator[AnswerEvent]:
    """Retrieve and answer, streaming. Every question is logged, including failed ones."""
    require(actor, Permission.RAG_QUERY, action="rag.ask", target=str(collection_id))
    require(actor, Permission.LLM_USE, action="rag.ask", target=str(collection_id))
    retrieval = search(actor, collection_id, question, k=k, mode=mode, filters=filters)
    yield AnswerEvent(retrieval=retrieval)
    if not retrieval.relevant:
        text = NOT_FOUND.format(name=retrieval.collection_name)
        query_id = _log(actor, retrieval, text, "not_found", [], 0.0, None, "")
        yield AnswerEvent(answer=_answer(query_id, text, "not_found", retrieval, [], 0.0, None))
        return
    request = build_prompt(retrieval.query, retrieval.passages)
    started = time.perf_counter()
    parts: list[str] = []
    result: ChatResult | None = None
    try:
        for event in gateway.stream(actor, alias, request, team=TEAM):
            if event.delta:
                parts.append(event.delta)
                yield AnswerEvent(delta=event.delta)
            if event.result is not None:
                result = event.result
    except DomainError as exc:
        generate_ms = (time.perf_counter() - started) * 1000
        message = f"The model could not answer: {exc}"
        query_id = _log(actor, retrieval, "".join(parts), "error", [], generate_ms, None, message)
        yield AnswerEvent(
            answer=_answer(
                query_id, "".join(parts), "error", retrieval, [], generate_ms, None, message
            )
        )
        return
    generate_ms = (time.perf_counter() - started) * 1000
    text = (result.text if result is not None else "".join(parts)).strip()
    cited = citations_in(text, len(retrieval.passages))
    query_id = _log(actor, retrieval, text, "answered", cited, generate_ms, result, "")
    yield AnswerEvent(
        answer=_answer(query_id, text, "answered", retrieval, cited, generate_ms, result)
    )


def ask(
    actor: Actor,
    collection_id: int,
    question: str,
    *,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    alias: str = DEFAULT_ALIAS,
) -> Answer:
    for event in ask_stream(
        actor, collection_id, question, k=k, mode=mode, filters=filters, alias=alias
    ):
        if event.answer is not None:
            return event.answer
    raise RuntimeError("ask_stream ended without an answer")  # pragma: no cover


def _answer(
    query_id: int,
    text: str,
    status: Status,
    retrieval: Retrieval,
    cited: list[int],
    generate_ms: float,
    result: ChatResult | None,
    error: str = "",
) -> Answer:
    return Answer(
        query_id=query_id,
        text=text,
        status=status,
        passages=retrieval.passages,
        cited=cited,
        embed_ms=retrieval.embed_ms,
        search_ms=retrieval.search_ms,
        generate_ms=generate_ms,
        cost_micros=result.cost_micros if result else 0,
        deployment=result.deployment if result else "",
        model=result.model if result else "",
        error=error,
    )


def _log(
    actor: Actor,
    retrieval: Retrieval,
    text: str,
    status: Status,
    cited: list[int],
    generate_ms: float,
    result: ChatResult | None,
    error: str,
) -> int:
    passages = [
        {"chunk": p.chunk_id, "score": round(p.score, 6), "relevance": round(p.relevance, 4)}
        for p in retrieval.passages
    ]
    with unit_of_work() as session:
        row = QueryLog(
            actor=actor.username,
            collection_id=retrieval.collection_id,
            question=retrieval.query,
            answer=text,
            status=status,
            error=clean_text(error, 500),
            passages=json.dumps(passages),
            cited=",".join(str(n) for n in cited),
            top_relevance=retrieval.top_relevance,
            embed_ms=retrieval.embed_ms,
            search_ms=retrieval.search_ms,
            generate_ms=generate_ms,
            deployment=result.deployment if result else "",
            cost_micros=result.cost_micros if result else 0,
        )
        session.add(row)
        session.flush()
        return int(row.id)


def rate_answer(actor: Actor, query_id: int, rating: int, comment: str = "") -> None:
    """+1 (helpful) or -1 (not helpful) on one's own answer; rating again replaces it."""
    require(actor, Permission.RAG_QUERY, action="rag.rate", target=str(query_id))
    if rating not in (1, -1):
        raise ValidationError("A rating is +1 (helpful) or -1 (not helpful).")
    with unit_of_work() as session:
        row = session.get(QueryLog, int(query_id))
        if row is None:
            raise NotFound(f"Question {query_id} is not in the log.")
        if row.actor != actor.username:
            raise PermissionDenied("You can only rate answers to your own questions.")
        row.rating = rating
        row.rating_comment = clean_text(comment, 500)
        row.rated_at = utcnow()
        record(session, actor, "rag.rate", f"query:{row.id}", {"rating": rating})


@dataclass(frozen=True)
class QueryRecord:
    id: int
    ts: datetime
    actor: str
    collection: str
    question: str
    answer: str
    status: str
    cited: str
    top_relevance: float
    embed_ms: float
    search_ms: float
    generate_ms: float
    deployment: str
    cost_micros: int
    rating: int | None
    rating_comment: str
    passages: list[dict[str, float]] = field(default_factory=list)


def query_log(
    actor: Actor, collection_id: int | None = None, *, mine: bool = False, limit: int = 200
) -> list[QueryRecord]:
    """Recent questions, newest first. Everyone sees their own; with `rag.manage`, all questions
    on the collections one may access."""
    require(actor, Permission.RAG_QUERY, action="rag.log.read")
    manager = has_permission(actor.role, Permission.RAG_MANAGE)
    with unit_of_work(read_only=True) as session:
        stmt = (
            select(QueryLog, Collection)
            .outerjoin(Collection, Collection.id == QueryLog.collection_id)
            .order_by(QueryLog.id.desc())
            .limit(max(1, min(limit, 5000)))
        )
        if collection_id is not None:
            load_for(session, actor, collection_id, Permission.RAG_QUERY, "rag.log.read")
            stmt = stmt.where(QueryLog.collection_id == collection_id)
        if mine or not manager:
            stmt = stmt.where(QueryLog.actor == actor.username)
        out: list[QueryRecord] = []
        for q, c in session.execute(stmt):
            if c is not None and not may_access(actor, c) and q.actor != actor.username:
                continue
            out.append(
                QueryRecord(
                    q.id,
                    q.ts,
                    q.actor,
                    c.name if c else "(deleted)",
                    q.question,
                    q.answer,
                    q.status,
                    q.cited,
                    q.top_relevance,
                    q.embed_ms,
                    q.search_ms,
                    q.generate_ms,
                    q.deployment,
                    q.cost_micros,
                    q.rating,
                    q.rating_comment,
                    json.loads(q.passages or "[]"),
                )
            )
        return out


def rated_pairs(actor: Actor, collection_id: int) -> list[tuple[str, str]]:
    """(question, cited passage text) for answers rated helpful: training pairs for
    `omni rag tune`."""
    require(actor, Permission.RAG_TUNE, action="rag.tune.pairs", target=str(collection_id))
    from core.rag.models import Chunk

    pairs: list[tuple[str, str]] = []
    with unit_of_work(read_only=True) as session:
        load_for(session, actor, collection_id, Permission.RAG_TUNE, "rag.tune.pairs")
        rows = session.scalars(
            select(QueryLog).where(QueryLog.collection_id == collection_id, QueryLog.rating == 1)
        ).all()
        for q in rows:
            numbers = [int(n) for n in q.cited.split(",") if n]
            chunks = json.loads(q.passages or "[]")
            for n in numbers:
                if 1 <= n <= len(chunks):
                    text = session.scalar(
                        select(Chunk.text).where(Chunk.id == chunks[n - 1]["chunk"])
                    )
                    if text:
                        pairs.append((q.question, text))
    return pairs
