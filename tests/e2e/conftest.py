"""Fixtures for the browser smoke test: a fresh state directory with one account, the real console
served by `streamlit run`, and Debian's headless Chromium driven by Playwright.

Chromium comes from Debian's packages (`make e2e-deps`), never from `playwright install`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_USERNAME = "e2e-admin"
E2E_PASSWORD = "Correct-Horse-Battery-42"  # >= 12 chars, does not contain the username
HEALTH_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120


@dataclass(frozen=True)
class OmniInstance:
    home: Path
    env: dict[str, str]
    username: str
    password: str


@dataclass(frozen=True)
class Console:
    url: str
    log: Path


def _omni(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run the `omni` CLI of this interpreter; fail the test with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"`omni {' '.join(args)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@pytest.fixture
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not installed (apt-get install chromium): "
            f"{CHROMIUM} is missing, so the browser smoke test cannot run. "
            f"`make e2e-deps` installs it."
        )
    return CHROMIUM


@pytest.fixture
def omni_instance(tmp_path: Path) -> OmniInstance:
    """A migrated SQLite database in a fresh OMNI_HOME with one admin whose password we know."""
    home = tmp_path / "omni-home"
    home.mkdir()
    # Only our settings: drop any OMNI_* of the caller; pin the URL so a repo-root .env cannot
    # point the console somewhere else.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        {
            "OMNI_CLOCK_START": os.environ.get("OMNI_CLOCK_START", ""),  # the run's pinned clock
            "OMNI_HOME": str(home),
            "OMNI_DATABASE_URL": f"sqlite:///{home / 'omni.db'}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    _omni(["db", "upgrade"], env)
    _omni(
        ["users", "create", E2E_USERNAME, "--role", "admin", "--password-stdin"],
        env,
        stdin=E2E_PASSWORD + "\n",
    )
    return OmniInstance(home, env, E2E_USERNAME, E2E_PASSWORD)


@pytest.fixture
def console(omni_instance: OmniInstance, tmp_path: Path) -> Iterator[Console]:
    """`streamlit run console/app.py` on a free port; always stopped, even when the test fails."""
    port = _free_port()
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "console/app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=REPO_ROOT,
            env=omni_instance.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, f"{url}/_stcore/health", log)
        yield Console(url, log)
    finally:
        _stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], health_url: str, log: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited {proc.returncode} before it was healthy:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(health_url, timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.25)
    pytest.fail(
        f"{health_url} did not answer 'ok' within {HEALTH_TIMEOUT_S:.0f} s "
        f"(last error: {last_error}):\n{_tail(log)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the streamlit process group we started, SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def browser_page(chromium_path: Path) -> Iterator[Page]:
    """A Playwright page in Debian's headless Chromium; browser closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield page
            context.close()
        finally:
            browser.close()
