"""`omni billing ...` as a scheduler runs it: the month's invoices (twice), finalisation, a usage
import and the lake refresh, with errors as messages and exit status 1."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from core.cli import app
from tests.billing_ledger import build_ledger

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_invoice_run_finalise_and_usage_import_from_the_shell(
    sqlite_db: str, tmp_path: Path
) -> None:
    ledger = build_ledger()
    code, out = _run("billing", "run", "2026-01")
    assert code == 0 and "4 invoices; 4 created" in out and "EUR 219.07, USD 49.00" in out
    code, out = _run("billing", "run", "2026-01")
    assert code == 0 and "0 created, 0 updated, 4 unchanged" in out
    assert _run("billing", "finalise", "2026-01") == (0, "Finalised 4 invoice(s) of 2026-01.\n")

    usage = tmp_path / "usage.csv"
    berlin = ledger.customers["Berlin Robotics GmbH"]
    usage.write_text(
        f"event_id,customer_id,metric,quantity,timestamp\nu1,{berlin},api_calls,7,"
        "2026-02-03T10:00:00Z\n"
    )
    assert _run("billing", "import-usage", str(usage))[1].startswith("1 rows: 1 added")
    assert "0 added, 1 already imported" in _run("billing", "import-usage", str(usage))[1]
    code, out = _run("billing", "refresh-lake")
    assert code == 0 and "Usage lake up to date" in out

    code, out = _run("billing", "run", "2099-01")
    assert code == 1 and "has not ended" in out
    code, out = _run("billing", "stripe", "status")
    assert code == 0 and "off" in out.lower()
