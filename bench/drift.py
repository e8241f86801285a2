"""Data drift at scale: the project's `drift_report` against Evidently 0.7.23's
`Report([DataDriftPreset()])` on the same two windows, for speed and for agreement of verdicts.

Data (fixed seeds): the bike-sharing hourly table (data/bike-sharing/hour.csv). Reference = rows
resampled with replacement from 2011, current = rows resampled from 2012 (ridership grew, so the
counts drift on their own), with deliberate shifts on top: temperature +0.04, humidity x 0.9
and 25% of clear-weather hours turned to light rain. 20 columns: the 15 bike columns (yr is 0
in one window and 1 in the other: a constant that moved) and 5 noise columns, a standard normal
in both windows, one shifted by 0.25 sd (drift) and one by 0.05 sd (under the 0.1 threshold),
and two text categories, one with the same shares in both windows and one whose shares move.
Both frames are written to Parquet in a temporary folder and read back by each side.

Timed: our `drift_report` (median of --rounds, default 3, with the default thread pool; one
more round on one thread), and Evidently in its own virtual environment (bench/.peers/evidently,
created on first run: it needs pandas < 3) through bench/peers/evidently_drift.py, which times
`Report.run` plus reading each column's verdict from the snapshot (1 round at a million rows:
it takes most of a minute; 3 rounds at smaller sizes). Reading Parquet is untimed on both sides.

Usage: .venv/bin/python bench/drift.py [--sizes 1000000 100000] [--rounds 3] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine_info import append_results, load_average, machine  # noqa: E402
from core import clock  # noqa: E402  (the console's one clock)
from core.mlops.bike import FEATURES  # noqa: E402
from core.mlops.drift import DriftReport, drift_report  # noqa: E402

BIKE = ROOT / "data" / "bike-sharing" / "hour.csv"
# the demo model's inputs (same order as the CSV) and the three counts
BIKE_COLUMNS = [*FEATURES, "casual", "registered", "cnt"]
PEER_VENV = ROOT / "bench" / ".peers" / "evidently"
PEER_SCRIPT = ROOT / "bench" / "peers" / "evidently_drift.py"
PEER_PACKAGES = ["evidently==0.7.23", "pandas<3", "pyarrow"]
SEED = 20261126


def windows(rows: int, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference (2011) and current (2012, shifted) windows of `rows` rows each."""
    bike = pd.read_csv(BIKE)[BIKE_COLUMNS]
    rng = np.random.default_rng(seed)
    y2011 = bike[bike["yr"] == 0].reset_index(drop=True)
    y2012 = bike[bike["yr"] == 1].reset_index(drop=True)
    reference = y2011.iloc[rng.integers(0, len(y2011), rows)].reset_index(drop=True)
    current = y2012.iloc[rng.integers(0, len(y2012), rows)].reset_index(drop=True)
    current["temp"] = (current["temp"] + 0.04).round(2)
    current["hum"] = (current["hum"] * 0.9).round(2)
    clear = (current["weathersit"] == 1).to_numpy() & (rng.random(rows) < 0.25)
    current.loc[clear, "weathersit"] = 3
    letters = np.array(["a", "b", "c", "d", "e"], dtype=object)
    for frame, shifted in ((reference, False), (current, True)):
        frame["noise_same"] = rng.normal(0.0, 1.0, rows)
        frame["noise_shift"] = rng.normal(0.25 if shifted else 0.0, 1.0, rows)
        frame["noise_small_shift"] = rng.normal(0.05 if shifted else 0.0, 1.0, rows)
        frame["segment_same"] = rng.choice(letters, rows, p=[0.4, 0.3, 0.15, 0.1, 0.05])
        moved = [0.25, 0.25, 0.2, 0.15, 0.15] if shifted else [0.4, 0.3, 0.15, 0.1, 0.05]
        frame["segment_shift"] = rng.choice(letters, rows, p=moved)
    return reference, current


def ensure_peer() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PEER_VENV} ({', '.join(PEER_PACKAGES)}) ...", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(PEER_VENV)], check=True)  # noqa: S603, S607
        subprocess.run(  # noqa: S603 - fixed arguments
            [str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True
        )
    return python


def run_peer(python: Path, ref_path: Path, cur_path: Path) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own script and temporary files
        [str(python), str(PEER_SCRIPT), str(ref_path), str(cur_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def timed_report(
    reference: pd.DataFrame, current: pd.DataFrame, workers: int | None
) -> tuple[float, DriftReport]:
    begin = time.perf_counter()
    report = drift_report(reference, current, workers=workers)
    return time.perf_counter() - begin, report


def compare(ours: DriftReport, peer: dict[str, Any]) -> dict[str, Any]:
    """Verdict agreement, disagreements with both scores, and how close the scores are where
    both sides chose the same test."""
    rows, disagreements, score_gaps = [], [], []
    for result in ours.columns:
        theirs = peer["columns"].get(result.column)
        if theirs is None:
            disagreements.append(f"{result.column}: not in Evidently's report")
            continue
        same = result.drifted == theirs["drifted"]
        rows.append((result.column, result.kind, result.test, result.score, result.drifted, theirs))
        if not same:
            disagreements.append(
                f"{result.column}: project {result.test} {result.score:.4g} "
                f"({'drift' if result.drifted else 'no drift'}), Evidently {theirs['test']} "
                f"{theirs['score']:.4g} ({'drift' if theirs['drifted'] else 'no drift'})"
            )
        if result.test == theirs["test"]:
            scale = max(abs(theirs["score"]), 1e-12)
            score_gaps.append(abs(result.score - theirs["score"]) / scale)
    agreed = sum(r[4] == r[5]["drifted"] for r in rows)
    return {
        "rows": rows,
        "agreement": agreed / len(ours.columns),
        "disagreements": disagreements,
        "same_test": len(score_gaps),
        "max_rel_gap": max(score_gaps) if score_gaps else float("nan"),
    }


def seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def measure(rows: int, rounds: int, python: Path, folder: Path) -> dict[str, Any]:
    reference, current = windows(rows)
    ref_path, cur_path = folder / f"reference-{rows}.parquet", folder / f"current-{rows}.parquet"
    reference.to_parquet(ref_path, index=False)
    current.to_parquet(cur_path, index=False)
    reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    load_before = load_average()
    drift_report(reference.head(1000), current.head(1000))  # warm imports, thread pool
    ours_times, report = [], None
    for _ in range(rounds):
        t, report = timed_report(reference, current, None)
        ours_times.append(t)
    single, _ = timed_report(reference, current, 1)
    peer_rounds = 1 if rows >= 500_000 else rounds
    peer_runs = [run_peer(python, ref_path, cur_path) for _ in range(peer_rounds)]
    load_after = load_average()
    assert report is not None
    return {
        "rows": rows,
        "columns": reference.shape[1],
        "ours": statistics.median(ours_times),
        "ours_times": ours_times,
        "single": single,
        "peer": statistics.median(r["seconds"] for r in peer_runs),
        "peer_times": [r["seconds"] for r in peer_runs],
        "peer_versions": peer_runs[0]["versions"],
        "report": report,
        "peer_share": peer_runs[0]["drift_share"],
        "compare": compare(report, peer_runs[0]),
        "load": (load_before, load_after),
    }


def column_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| column | kind | project test | project score | Evidently test | Evidently score | "
        "drift (project / Evidently) |",
        "| --- | --- | --- | ---: | --- | ---: | --- |",
    ]
    for column, kind, test, score, drifted, theirs in result["compare"]["rows"]:
        mark = {True: "yes", False: "no", None: "?"}
        lines.append(
            f"| {column} | {kind} | {test} | {score:.4g} | {theirs['test']} | "
            f"{theirs['score']:.4g} | {mark[drifted]} / {mark[theirs['drifted']]} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    print(machine())
    print(f"load average (1/5/15 min) at start: {load_average()}")
    python = ensure_peer()
    folder = Path(tempfile.mkdtemp(prefix="omni-bench-drift-"))
    try:
        results = []
        for rows in args.sizes:
            print(f"{rows:,} rows ...", flush=True)
            results.append(measure(rows, args.rounds, python, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    versions = results[0]["peer_versions"]
    lines = [
        f"## Data drift: column drift report at scale ({clock.utcnow():%Y-%m-%d}, "
        "bench/drift.py)",
        "",
        f"Machine: {machine()}. Bike-sharing hours resampled with replacement: reference from "
        "2011, current from 2012 with shifts (temp +0.04, hum x 0.9, 25% of clear hours to "
        "light rain), plus 5 noise columns (3 normal, 2 text categories; one normal and one "
        "category shifted, one normal shifted by 0.05 sd only). Both sides read the same Parquet "
        f"files (untimed). Peer: Evidently {versions['evidently']} `Report([DataDriftPreset()])` "
        f"(pandas {versions['pandas']}, own venv), timing `run` plus reading the verdicts. "
        f"Project: `drift_report`, median of {args.rounds} rounds, default thread pool.",
        "",
        "| rows x columns | project | project, 1 thread | Evidently | ratio | verdict agreement | "
        "drifted columns (project / Evidently) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        report: DriftReport = r["report"]
        drifted_peer = sum(bool(v[5]["drifted"]) for v in r["compare"]["rows"])
        rounds_note = (
            "1 round" if len(r["peer_times"]) == 1 else f"median of {len(r['peer_times'])}"
        )
        lines.append(
            f"| {r['rows']:,} x {r['columns']} | {r['ours']:.2f} s | {r['single']:.2f} s | "
            f"{r['peer']:.2f} s ({rounds_note}) | {r['peer'] / r['ours']:.1f}x | "
            f"{r['compare']['agreement']:.0%} | {len(report.drifted_columns)} / {drifted_peer} |"
        )
    lines.append("")
    for r in results:
        c = r["compare"]
        report = r["report"]
        lines.append(
            f"{r['rows']:,} rows: dataset drift share project {report.drift_share:.2f}, "
            f"Evidently {r['peer_share']:.2f}; same test chosen for {c['same_test']} of "
            f"{r['columns']} columns, largest relative score difference there "
            f"{c['max_rel_gap']:.1e}; disagreements: "
            + ("; ".join(c["disagreements"]) if c["disagreements"] else "none")
            + f". Rounds (s): project {seconds(r['ours_times'])}; Evidently "
            f"{seconds(r['peer_times'])}. Load average (1/5/15 min) before {r['load'][0]}, "
            f"after {r['load'][1]}."
        )
    lines.append("")
    lines.append(f"Per column, {results[0]['rows']:,} rows:")
    lines.append("")
    lines.extend(column_table(results[0]))
    big = results[0]
    lines += [
        "",
        f"Targets: at least 10x Evidently at {big['rows']:,} rows: "
        f"{big['peer'] / big['ours']:.1f}x "
        f"({'met' if big['peer'] / big['ours'] >= 10 else 'missed'}); verdict agreement >= 95%: "
        f"{big['compare']['agreement']:.0%} "
        f"({'met' if big['compare']['agreement'] >= 0.95 else 'missed'}).",
        "",
    ]
    print("\n".join(lines))
    if not args.no_record:
        append_results(lines)


if __name__ == "__main__":
    main()
