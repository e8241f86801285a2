"""Side-by-side comparison: one prompt to several deployments at once, streamed, scored, saved."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import DomainError, NotFound, ValidationError
from core.llm import gateway
from core.llm.deployments import required_capabilities
from core.llm.models import CompareResult, CompareRun
from core.llm.types import Attachment, ChatRequest, ChatResult, Message

MAX_TARGETS = 6
MAX_PROMPT_CHARS = 20_000
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
JUDGE_SYSTEM = (
    "You are a strict evaluator. Rate how well the answer responds to the question, from 1 "
    "(useless or wrong) to 10 (correct, complete and clear). Reply with the number only."
)


@dataclass(frozen=True)
class CompareTarget:
    deployment: str
    temperature: float = 0.7


@dataclass(frozen=True)
class CompareSpec:
    prompt: str
    targets: tuple[CompareTarget, ...]
    system_prompt: str = ""
    max_tokens: int = 256
    reference: str | None = None
    judge: str | None = None
    attachment: Attachment | None = None

    def validate(self) -> None:
        if not self.prompt.strip() and self.attachment is None:
            raise ValidationError("Write a prompt (or attach a file) to compare.")
        if len(self.prompt) > MAX_PROMPT_CHARS or len(self.system_prompt) > MAX_PROMPT_CHARS:
            raise ValidationError(f"Prompts are limited to {MAX_PROMPT_CHARS:,} characters.")
        if not 1 <= len(self.targets) <= MAX_TARGETS:
            raise ValidationError(f"Choose between 1 and {MAX_TARGETS} targets.")
        if self.attachment is not None and len(self.attachment.data) > MAX_ATTACHMENT_BYTES:
            raise ValidationError("The attachment is over 10 MB; use a smaller file.")

    def request_for(self, target: CompareTarget) -> ChatRequest:
        attachments = (self.attachment,) if self.attachment else ()
        messages: tuple[Message, ...] = ()
        if self.system_prompt.strip():
            messages = (Message("system", self.system_prompt),)
        messages += (Message("user", self.prompt, attachments),)
        return ChatRequest(
            messages=messages, temperature=target.temperature, max_tokens=self.max_tokens
        )


@dataclass
class Outcome:
    target: CompareTarget
    text: str = ""
    result: ChatResult | None = None
    error: str | None = None
    judge_score: float | None = None
    reference_score: float | None = None


@dataclass(frozen=True)
class CompareEvent:
    index: int
    delta: str = ""
    result: ChatResult | None = None
    error: str | None = None


@dataclass
class CompareSession:
    """Fan a spec out to its targets on threads; the caller drains `events()` on its own thread
    (Streamlit draws only from the script thread), then calls `finish()` to score and save."""

    actor: Actor
    spec: CompareSpec
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(self.actor, Permission.LLM_COMPARE, action="llm.compare")
        self.spec.validate()
        self.outcomes = [Outcome(t) for t in self.spec.targets]

    def unable(self) -> dict[int, str]:
        """Targets that cannot take this input (an image for a text-only model), with why."""
        needed = required_capabilities(self.spec.request_for(self.spec.targets[0]))
        caps = gateway.deployment_capabilities(self.actor)
        out = {}
        for i, target in enumerate(self.spec.targets):
            ready, reason, has = caps.get(
                target.deployment, (False, "unknown deployment", frozenset())
            )
            if not ready:
                out[i] = reason
            elif needed - has:
                out[i] = "cannot take " + ", ".join(sorted(c.value for c in needed - has))
        return out

    def events(self) -> Iterator[CompareEvent]:
        inbox: queue.Queue[CompareEvent | None] = queue.Queue()
        skip = self.unable()
        for index, why in skip.items():
            self.outcomes[index].error = why
            yield CompareEvent(index, error=why)
        workers = [
            threading.Thread(target=self._run_one, args=(i, inbox), daemon=True)
            for i in range(len(self.spec.targets))
            if i not in skip
        ]
        for worker in workers:
            worker.start()
        remaining = len(workers)
        while remaining:
            event = inbox.get()
            if event is None:
                remaining -= 1
                continue
            outcome = self.outcomes[event.index]
            outcome.text += event.delta
            if event.result is not None:
                outcome.result, outcome.text = event.result, event.result.text
            if event.error is not None:
                outcome.error = event.error
            yield event

    def _run_one(self, index: int, inbox: queue.Queue[CompareEvent | None]) -> None:
        target = self.spec.targets[index]
        try:
            for event in gateway.stream_deployment(
                self.actor, target.deployment, self.spec.request_for(target)
            ):
                inbox.put(CompareEvent(index, delta=event.delta, result=event.result))
        except DomainError as exc:
            inbox.put(CompareEvent(index, error=exc.message))
        except Exception as exc:  # a worker must always report, or the page would wait forever
            inbox.put(CompareEvent(index, error=f"unexpected failure: {type(exc).__name__}"))
        finally:
            inbox.put(None)

    def finish(self) -> int:
        """Score (reference similarity, judge) and save the run; returns its id."""
        answered = [o for o in self.outcomes if o.result is not None and o.text.strip()]
        if self.spec.reference and answered:
            from core.embeddings.minilm import shared_embedder

            vectors = shared_embedder().embed([self.spec.reference] + [o.text for o in answered])
            for outcome, vector in zip(answered, vectors[1:], strict=True):
                outcome.reference_score = round(float(vectors[0] @ vector), 4)
        if self.spec.judge:
            for outcome in answered:
                outcome.judge_score = self._judge(outcome.text)
        return self._save()

    def _judge(self, answer: str) -> float | None:
        reference = f"\nReference answer: {self.spec.reference}" if self.spec.reference else ""
        request = ChatRequest.simple(
            f"Question: {self.spec.prompt}{reference}\nAnswer to rate: {answer}",
            system=JUDGE_SYSTEM,
            temperature=0,
            max_tokens=8,
        )
        try:
            verdict = gateway.call_deployment(self.actor, self.spec.judge or "", request).text
        except DomainError:
            return None
        match = re.search(r"\b(10|[1-9])\b", verdict)
        return int(match.group(1)) / 10 if match else None

    def _save(self) -> int:
        spec = self.spec
        with unit_of_work() as session:
            run = CompareRun(
                actor=self.actor.username,
                system_prompt=spec.system_prompt,
                prompt=spec.prompt,
                max_tokens=spec.max_tokens,
                reference=spec.reference,
                judge=spec.judge,
                attachment=(
                    f"{spec.attachment.name} ({spec.attachment.mime})" if spec.attachment else None
                ),
            )
            session.add(run)
            session.flush()
            for o in self.outcomes:
                r = o.result
                session.add(
                    CompareResult(
                        run_id=run.id,
                        deployment=o.target.deployment,
                        provider=r.provider if r else "",
                        model=r.model if r else "",
                        temperature=o.target.temperature,
                        text=o.text,
                        error=o.error,
                        input_tokens=r.input_tokens if r else 0,
                        output_tokens=r.output_tokens if r else 0,
                        cost_micros=r.cost_micros if r else 0,
                        latency_ms=r.latency_ms if r else 0.0,
                        finish_reason=r.finish_reason if r else "error",
                        judge_score=o.judge_score,
                        reference_score=o.reference_score,
                    )
                )
            record(
                session,
                self.actor,
                "llm.compare.run",
                f"run:{run.id}",
                {"targets": [f"{t.deployment}@{t.temperature}" for t in spec.targets]},
            )
            return run.id


@dataclass(frozen=True)
class RunSummary:
    id: int
    created_at: datetime
    actor: str
    prompt: str
    targets: int


def list_runs(actor: Actor, limit: int = 50) -> list[RunSummary]:
    require(actor, Permission.LLM_COMPARE, action="llm.compare.list")
    with unit_of_work(read_only=True) as session:
        runs = list(session.scalars(select(CompareRun).order_by(CompareRun.id.desc()).limit(limit)))
        counts: dict[int, int] = {}
        for run_id in session.scalars(
            select(CompareResult.run_id).where(CompareResult.run_id.in_([r.id for r in runs]))
        ):
            counts[run_id] = counts.get(run_id, 0) + 1
        return [
            RunSummary(r.id, r.created_at, r.actor, r.prompt, counts.get(r.id, 0)) for r in runs
        ]


def run_detail(actor: Actor, run_id: int) -> tuple[CompareRun, list[CompareResult]]:
    require(actor, Permission.LLM_COMPARE, action="llm.compare.list")
    with unit_of_work(read_only=True) as session:
        run = session.get(CompareRun, run_id)
        if run is None:
            raise NotFound(f"No comparison run {run_id}.")
        results = list(
            session.scalars(
                select(CompareResult)
                .where(CompareResult.run_id == run_id)
                .order_by(CompareResult.id)
            )
        )
        return run, results


def results_over_time(actor: Actor, limit: int = 5_000) -> list[tuple[datetime, CompareResult]]:
    """Every saved result with its run's time: the latency and cost charts per provider."""
    require(actor, Permission.LLM_COMPARE, action="llm.compare.list")
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(CompareRun.created_at, CompareResult)
            .join(CompareResult, CompareResult.run_id == CompareRun.id)
            .order_by(CompareRun.created_at.desc())
            .limit(limit)
        )
        return [(ts, result) for ts, result in rows]
