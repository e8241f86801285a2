"""`omni rag ...`: collections, ingestion, search, answers, evaluation and tuning from the shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from core.cli_support import cli_actor, reported
from core.money import format_usd

rag_app = typer.Typer(help="The knowledge base (RAG).", no_args_is_help=True)

CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="collection name")]


def _collection_id(name: str) -> int:
    from core.rag.collections import find_collection

    return find_collection(cli_actor(), name).id


@rag_app.command("collections")
def collections() -> None:
    """List the collections with their size and settings."""
    from core.rag.collections import list_collections

    with reported():
        rows = list_collections(cli_actor())
    if not rows:
        typer.echo("No collections yet: `omni rag create NAME`.")
        return
    typer.echo(f"{'NAME':<28} {'DOCS':>6} {'CHUNKS':>7} {'MODEL':<22} {'FUSION':<16} ROLES")
    for c in rows:
        fusion = f"{c.fusion} a={c.alpha:g}"
        roles = ",".join(r.value for r in c.roles)
        typer.echo(
            f"{c.name:<28} {c.documents:>6} {c.chunks:>7} {c.embedding_model:<22} {fusion:<16} "
            f"{roles}"
        )


@rag_app.command("create")
def create(
    name: str,
    description: str = "",
    roles: Annotated[
        str, typer.Option(help="comma-separated roles that may query it")
    ] = "admin,compliance_officer,ml_engineer",
    embedding_model: Annotated[str, typer.Option(help="minilm, tuned:M/V or openai:M")] = "minilm",
    fusion: Annotated[str, typer.Option(help="zscore, minmax or rrf")] = "zscore",
    alpha: Annotated[float, typer.Option(help="weight of dense retrieval, 0-1")] = 0.5,
) -> None:
    """Create a collection."""
    from core.rag.collections import create_collection

    with reported():
        c = create_collection(
            cli_actor(),
            name,
            description=description,
            roles=[r for r in roles.split(",") if r.strip()],
            embedding_model=embedding_model,
            fusion=fusion,
            alpha=alpha,
        )
    typer.echo(f"Created collection '{c.name}' (id {c.id}).")


def _files(paths: list[Path]) -> list[Path]:
    from core.rag.extract import ACCEPTED_EXTENSIONS

    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in ACCEPTED_EXTENSIONS
            )
        else:
            out.append(path)  # named explicitly: an unsupported type is reported, not skipped
    return out


@rag_app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or directories (searched for files)")],
    collection: CollectionOpt,
) -> None:
    """Extract, chunk, embed and index files; one line per file. Exit status 1 if any failed."""
    from core.rag.ingest import UploadedFile, ingest_files

    files = _files(paths)
    if not files:
        typer.secho("No files to ingest.", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    uploads: list[UploadedFile] = []
    unreadable: list[tuple[str, str]] = []
    for f in files:
        try:
            uploads.append(UploadedFile(str(f), f.read_bytes()))
        except OSError as exc:
            unreadable.append((str(f), f"cannot be read: {exc.strerror or exc}"))

    def progress(done: int, total: int, name: str, step: str) -> None:
        if name:
            typer.echo(f"[{done + 1}/{total}] {name}: {step}", err=True)

    with reported():
        reports = ingest_files(cli_actor(), _collection_id(collection), uploads, progress)
    failed = len(unreadable)
    for source, message in unreadable:
        typer.secho(f"FAILED     {source}: {message}", fg=typer.colors.RED)
    for r in reports:
        colour = typer.colors.RED if r.status == "failed" else None
        typer.secho(f"{r.status.upper():<10} {r.source}: {r.message}", fg=colour)
        failed += r.status == "failed"
    ok = len(reports) - sum(r.status == "failed" for r in reports)
    typer.echo(f"{ok} of {len(files)} files indexed or up to date; {failed} failed.")
    if failed:
        raise typer.Exit(1)


@rag_app.command("documents")
def documents(collection: CollectionOpt) -> None:
    """List a collection's documents."""
    from core.rag.ingest import list_documents

    with reported():
        rows = list_documents(cli_actor(), _collection_id(collection))
    for d in rows:
        typer.echo(f"{d.id:>6} {d.chunks:>5} chunks  {d.source}")


@rag_app.command("delete-document")
def delete_document(source: str, collection: CollectionOpt) -> None:
    """Delete a document (by its source name) with its chunks and vectors."""
    from core.errors import NotFound
    from core.rag.ingest import delete_document as delete
    from core.rag.ingest import list_documents

    with reported():
        cid = _collection_id(collection)
        match = [d for d in list_documents(cli_actor(), cid) if d.source == source]
        if not match:
            raise NotFound(f"No document '{source}' in '{collection}'.")
        delete(cli_actor(), cid, match[0].id)
    typer.echo(f"Deleted '{source}'.")


@rag_app.command("search")
def search(
    query: str,
    collection: CollectionOpt,
    k: int = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or lexical")] = "hybrid",
) -> None:
    """The best passages for QUERY, with scores (no generation)."""
    from core.rag.retrieval import search as run

    with reported():
        r = run(cli_actor(), _collection_id(collection), query, k=k, mode=mode)  # type: ignore[arg-type]
    for p in r.passages:
        typer.echo(f"[{p.number}] {p.score:.3f} cos {p.relevance:.3f}  {p.location}")
        typer.echo("    " + p.text[:300].replace("\n", " "))
    typer.echo(f"embed {r.embed_ms:.1f} ms, search {r.search_ms:.1f} ms")


@rag_app.command("ask")
def ask(question: str, collection: CollectionOpt, k: int = 5, alias: str = "chat") -> None:
    """Answer QUESTION from the collection with cited passages (streams the answer)."""
    from core.rag.answers import ask_stream

    with reported():
        for event in ask_stream(
            cli_actor(), _collection_id(collection), question, k=k, alias=alias
        ):
            if event.delta:
                sys.stdout.write(event.delta)
                sys.stdout.flush()
            if event.answer is not None:
                a = event.answer
                if a.status != "answered":
                    typer.echo(a.error or a.text)
                typer.echo("")
                for p in a.citations or a.passages:
                    mark = "cited" if p.number in a.cited else "retrieved"
                    typer.echo(f"[{p.number}] {mark}: {p.location} (cos {p.relevance:.2f})")
                typer.echo(
                    f"embed {a.embed_ms:.0f} ms, search {a.search_ms:.0f} ms, generate "
                    f"{a.generate_ms:.0f} ms, cost {format_usd(a.cost_micros)}"
                    + (f", {a.deployment}" if a.deployment else "")
                )


@rag_app.command("eval")
def eval_(
    dataset_dir: Path,
    split: str = "test",
    model: Annotated[str, typer.Option(help="minilm, tuned:M/V or openai:M")] = "minilm",
    fusion: str = "zscore",
    alpha: float = 0.5,
    rrf_k: float = 60.0,
    depth: int = 1000,
    max_queries: Annotated[int | None, typer.Option(help="evaluate only the first N")] = None,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of lexical, dense and hybrid retrieval on BEIR data
    (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)."""
    from core.rag.evaluate import evaluate_dataset

    with reported():
        report = evaluate_dataset(
            cli_actor(),
            dataset_dir,
            split=split,
            model=model,
            fusion=fusion,
            alpha=alpha,
            rrf_k=rrf_k,
            depth=depth,
            max_queries=max_queries,
            progress=lambda msg: typer.echo(msg, err=True),
        )
    typer.echo(
        f"{report.dataset} ({report.split}): {report.documents:,} documents, "
        f"{report.queries:,} judged queries, model {report.model}"
    )
    typer.echo(report.table())


@rag_app.command("tune")
def tune_cmd(
    dataset_dir: Annotated[
        Path | None, typer.Argument(help="BEIR data (its qrels are the judgements)")
    ] = None,
    name: Annotated[str, typer.Option(help="registered model name suffix")] = "default",
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="tune on this collection's ratings")
    ] = None,
    split: str = "train",
    held_out: Annotated[float, typer.Option(help="share of queries kept out for evaluation")] = 0.2,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: Annotated[float | None, typer.Option(help="default: TuneConfig's")] = None,
    max_length: Annotated[int | None, typer.Option(help="tokens per text in training")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N steps")] = None,
    evaluate: Annotated[bool, typer.Option(help="score held-out queries before/after")] = True,
) -> None:
    """Fine-tune the embedding model (contrastive, in-batch negatives) on relevance judgements,
    log the run and register the model in MLflow. CUDA when present."""
    from core.rag.adaptation import tune_on_dataset, tune_on_ratings
    from core.rag.tune import TuneConfig

    overrides: dict[str, float | int] = {}
    if learning_rate is not None:
        overrides["learning_rate"] = learning_rate
    if max_length is not None:
        overrides["max_length"] = max_length
    config = TuneConfig(epochs=epochs, batch_size=batch_size, max_steps=max_steps, **overrides)  # type: ignore[arg-type]

    def progress(step: int, total: int, loss: float) -> None:
        if step == total or step % 10 == 0:
            typer.echo(f"step {step}/{total} loss {loss:.4f}", err=True)

    with reported():
        if (dataset_dir is None) == (collection is None):
            from core.errors import ValidationError

            raise ValidationError("Give either a BEIR DATASET_DIR or --collection (its ratings).")
        if collection is not None:
            result = tune_on_ratings(
                cli_actor(),
                _collection_id(collection),
                name=name,
                config=config,
                progress=progress,
            )
        else:
            assert dataset_dir is not None
            result = tune_on_dataset(
                cli_actor(),
                dataset_dir,
                name=name,
                split=split,
                held_out=held_out,
                config=config,
                progress=progress,
            )
    typer.echo(
        f"Registered {result.ref} (run {result.run_id}): {result.train.pairs} pairs, "
        f"{result.train.steps} steps on {result.train.device} in {result.train.seconds:.0f} s."
    )
    for key, value in sorted(result.metrics.items()):
        typer.echo(f"  {key}: {value:.4f}")
    typer.echo(f"Switch a collection to it: omni rag reembed -c NAME --model tuned:{result.ref}")


@rag_app.command("reembed")
def reembed(
    collection: CollectionOpt,
    model: Annotated[str, typer.Option(help="minilm, tuned:NAME/VERSION or openai:MODEL")],
) -> None:
    """Switch a collection to another embedding model, re-embedding all its chunks."""
    from core.rag.ingest import switch_embedding_model

    def progress(done: int, total: int) -> None:
        if done == total or done % 512 < 64:
            typer.echo(f"re-embedded {done:,}/{total:,}", err=True)

    with reported():
        count = switch_embedding_model(cli_actor(), _collection_id(collection), model, progress)
    typer.echo(f"'{collection}' now uses {model}: {count:,} chunks re-embedded.")
