"""The peer for bench/drift.py: Evidently's `Report([DataDriftPreset()])` on two Parquet files.

Runs inside Evidently's own virtual environment (bench/.peers/evidently: evidently 0.7.23 needs
pandas < 3, the project has pandas 3), so it imports nothing from the project. Reading the files
is not timed; the report run and the extraction of each column's test, score and verdict are.

    bench/.peers/evidently/bin/python bench/peers/evidently_drift.py REFERENCE.parquet \
        CURRENT.parquet

Prints one JSON object: {"seconds", "versions", "drift_share", "columns": {name: {"test",
"score", "threshold", "drifted"}}}. The verdicts are Evidently's own (its per-column tests,
FAIL = drift), not re-derived from the scores.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

# Evidently's display names of its tests, mapped to the project's test names
TEST_NAMES = {
    "K-S p_value": "ks",
    "Wasserstein distance (normed)": "wasserstein",
    "chi-square p_value": "chisquare",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Z-test p_value": "z",
}


def main() -> None:
    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(sys.argv[1])
    current = pd.read_parquet(sys.argv[2])
    begin = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference)
    result = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            method = config["method"]
            columns[config["column"]] = {
                "test": TEST_NAMES.get(method, method),
                "score": float(metric["value"]),
                "threshold": float(config["threshold"]),
                "drifted": None,
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith("ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    seconds = time.perf_counter() - begin
    print(
        json.dumps(
            {
                "seconds": seconds,
                "versions": {"evidently": evidently.__version__, "pandas": pd.__version__},
                "drift_share": share,
                "columns": columns,
            }
        )
    )


if __name__ == "__main__":
    main()
