"""Embedding throughput: the project's MiniLMEmbedder against the plain transformers loop (the peer:
batch 64, max length 256, fp32, input order, mean pooling), on the same SciFact abstracts
(title + " " + text) in one process.

    .venv/bin/python bench/embed_speed.py               # first 1,000 docs; appends to RESULTS.md
    .venv/bin/python bench/embed_speed.py --docs 0      # all 5,183 docs
    .venv/bin/python bench/embed_speed.py --no-record   # print only

Prints docs/s for both, the ratio, the max abs difference and min cosine between the two embedding
sets, and nDCG@10 of both on the SciFact train queries whose relevant documents all lie inside the
embedded subset (ranking over that subset), so the quality delta is measured, not assumed. Then
single-query latency (one `embed([query])` call at a time over up to 300 of those queries, after 20
warm-up calls) for the project's embedder and the plain model. The embedder runs with its
defaults (OMNI_EMBED_BACKEND / OMNI_EMBED_PRECISION apply); the first run builds the ONNX model
into $OMNI_HOME/cache/embeddings during the untimed warm-up. The load average (1 minute) is
printed before and after the timed part: the 2 cores here are shared with other work.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.machine_info import cpu_name  # noqa: E402
from core import clock  # noqa: E402  (the console's one clock)
from core.embeddings.minilm import (  # noqa: E402
    MAX_LENGTH,
    MiniLMEmbedder,
    _physical_cores,
    model_dir,
)

DATA = ROOT.parent / "shared" / "data" / "scifact"


def load_docs(limit: int) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    with open(DATA / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if limit and len(ids) >= limit:
                break
            d = json.loads(line)
            ids.append(str(d["_id"]))
            texts.append((d.get("title", "") + " " + d.get("text", "")).strip())
    return ids, texts


def plain_loop(texts: list[str], tok: Any, model: Any) -> np.ndarray:
    import torch

    out = np.zeros((len(texts), 384), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(texts), 64):
            enc = tok(
                texts[s : s + 64],
                padding=True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            h = model(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            pooled = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=1)
            out[s : s + len(pooled)] = pooled.numpy()
    return out


def latencies_ms(fn: Any, queries: list[str]) -> tuple[float, float]:
    """p50 and p95 of fn([q]) over `queries`, one at a time, after 20 warm-up calls."""
    for q in queries[:20]:
        fn([q])
    ms = []
    for q in queries:
        t0 = time.perf_counter()
        fn([q])
        ms.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def ndcg10(
    doc_ids: list[str], docs: np.ndarray, queries: np.ndarray, qrels: list[dict[str, int]]
) -> float:
    scores = queries @ docs.T
    total = 0.0
    for row, rel in zip(scores, qrels, strict=True):
        top = np.argsort(-row, kind="stable")[:10]
        dcg = sum(rel.get(doc_ids[j], 0) / math.log2(r + 2) for r, j in enumerate(top))
        ideal = sorted(rel.values(), reverse=True)[:10]
        total += dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return total / max(1, len(qrels))


def subset_queries(doc_ids: list[str]) -> tuple[list[str], list[dict[str, int]]]:
    present = set(doc_ids)
    rels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(DATA / "qrels" / "train.tsv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            rels[r["query-id"]][r["corpus-id"]] = int(r["score"])
    text = {}
    with open(DATA / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            text[str(q["_id"])] = q["text"]
    keep = [q for q, rel in rels.items() if q in text and rel and set(rel) <= present]
    return [text[q] for q in keep], [rels[q] for q in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1000, help="how many docs (0 = all 5,183)")
    ap.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    doc_ids, texts = load_docs(args.docs)
    q_texts, qrels = subset_queries(doc_ids)
    fast = MiniLMEmbedder()
    fast.embed(texts[:8])  # load + warm-up (the first run also exports the ONNX model)
    torch.set_num_threads(_physical_cores())  # the peer: one thread per physical core as well
    tok = AutoTokenizer.from_pretrained(model_dir())
    model = AutoModel.from_pretrained(model_dir()).eval()
    plain_loop(texts[:8], tok, model)
    print(
        f"{len(texts)} docs, {len(q_texts)} queries, {torch.get_num_threads()} torch threads, "
        f"embedder {fast.backend} {fast.precision} on {fast.device}"
        + (f" ({fast.onnx_path})" if fast.onnx_path else ""),
        flush=True,
    )
    load_before = os.getloadavg()[0]

    t0 = time.perf_counter()
    ref = plain_loop(texts, tok, model)
    t_plain = time.perf_counter() - t0
    print(f"plain loop: {len(texts) / t_plain:.1f} docs/s ({t_plain:.1f} s)", flush=True)
    t0 = time.perf_counter()
    got = fast.embed(texts)
    t_fast = time.perf_counter() - t0
    print(f"MiniLMEmbedder: {len(texts) / t_fast:.1f} docs/s ({t_fast:.1f} s)", flush=True)

    cos = (ref * got).sum(1)
    max_abs = float(np.abs(ref - got).max())
    norms = np.linalg.norm(got, axis=1)
    q_ref = plain_loop(q_texts, tok, model) if q_texts else np.zeros((0, 384), np.float32)
    q_got = fast.embed(q_texts)
    nd_ref = ndcg10(doc_ids, ref, q_ref, qrels)
    nd_got = ndcg10(doc_ids, got, q_got, qrels)
    ratio = t_plain / t_fast
    lat_q = q_texts[:300]
    lat_fast = latencies_ms(fast.embed, lat_q)
    lat_plain = latencies_ms(lambda qs: plain_loop(qs, tok, model), lat_q)
    load_after = os.getloadavg()[0]
    rows = [
        (
            "plain transformers loop (peer): fp32, batch 64, max len 256, input order",
            len(texts) / t_plain,
            t_plain,
            "1.00x",
            f"{nd_ref:.4f}",
        ),
        (
            f"MiniLMEmbedder ({fast.backend} {fast.precision}, length-sorted, token budget "
            f"{fast.token_budget})",
            len(texts) / t_fast,
            t_fast,
            f"{ratio:.2f}x",
            f"{nd_got:.4f}",
        ),
    ]
    table = [
        "| path | docs/s | seconds | vs peer | nDCG@10 (subset) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    table += [f"| {a} | {b:.1f} | {c:.1f} | {d} | {e} |" for a, b, c, d, e in rows]
    summary = (
        f"- Agreement with the peer over {len(texts)} docs: min cosine {cos.min():.6f}, mean "
        f"{cos.mean():.6f}, max abs difference {max_abs:.2e}; "
        f"norms {norms.min():.6f}..{norms.max():.6f}.\n"
        f"- nDCG@10 over {len(q_texts)} train queries whose relevant docs all lie in the subset "
        f"(ranked within it): peer {nd_ref:.4f}, embedder {nd_got:.4f}, "
        f"delta {nd_got - nd_ref:+.4f}.\n"
        "- Target >= 3x the peer with nDCG@10 within 0.005: speed "
        f"{'met' if ratio >= 3 else 'NOT met'} "
        f"({ratio:.2f}x), quality {'met' if abs(nd_got - nd_ref) <= 0.005 else 'NOT met'}.\n"
        f"- Single-query latency over {len(lat_q)} queries, one at a time (p50 / p95 ms): "
        f"embedder {lat_fast[0]:.2f} / {lat_fast[1]:.2f}, plain model {lat_plain[0]:.2f} / "
        f"{lat_plain[1]:.2f}.\n"
        f"- Load average (1 min) before the timed part {load_before:.2f}, after it "
        f"{load_after:.2f} (2 cores, shared with other work)."
    )
    print("\n".join(table))
    print(summary)
    if args.no_record:
        return
    try:
        import onnxruntime

        ort_version = f", onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort_version = ""
    machine = (
        f"{os.cpu_count()}-core {platform.machine()} {platform.system()} ({cpu_name()}), "
        f"{torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}{ort_version}"
    )
    when = clock.utcnow().strftime("%Y-%m-%d")
    section = (
        f"\n## Embedding speed (bench/embed_speed.py) — {when}, {machine}\n\n"
        f"Method: `.venv/bin/python bench/embed_speed.py --docs {args.docs}`. The first "
        f'{len(texts)} SciFact abstracts (title + " " + text), one process, each path warmed up '
        "once, then the peer and the project's embedder timed on the same texts (wall clock, "
        f"tokenisation included); the embedder with its defaults ({fast.backend} "
        f"{fast.precision}). Other processes shared this machine: compare the ratio.\n\n"
        + "\n".join(table)
        + "\n\n"
        + summary
        + "\n"
    )
    with open(BENCH / "RESULTS.md", "a", encoding="utf-8") as fh:
        fh.write(section)


if __name__ == "__main__":
    main()
