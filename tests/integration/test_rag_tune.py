"""`omni rag tune` for real, kept tiny: the bundled MiniLM fine-tuned for 1-2 steps on a handful of
pairs (max length 32), logged and registered in a real MLflow SQLite store under a temporary
OMNI_HOME. Two runs in all (one model version each), shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from core.config import reload_settings
from core.embeddings.minilm import MiniLMEmbedder
from core.errors import ConfigurationError, NotFound, ValidationError
from core.mlops.tracking import configure_mlflow, tracking_uri
from core.rag.beir import BeirDataset, BeirDocument
from core.rag.tune import (
    TuneConfig,
    TuneResult,
    clean_pairs,
    mine_hard_negatives,
    pairs_from_beir,
    registered_versions,
    split_queries,
    tune,
    tuned_model_path,
)
from tests.conftest import use_home

NAME = "omni-embeddings-test"
PAIRS = [
    ("what regulates the cell cycle", "Cyclin-dependent kinases drive the cell cycle in yeast."),
    ("does aspirin reduce stroke risk", "Low-dose aspirin lowered stroke incidence in trials."),
    ("how do vaccines train immunity", "Vaccines expose the immune system to a harmless antigen."),
    ("what causes insulin resistance", "Visceral fat and inflammation impair insulin signalling."),
    ("is sleep linked to memory", "Slow-wave sleep consolidates declarative memories."),
    ("what does p53 do", "The p53 protein halts division of cells with damaged DNA."),
]
PROBE = ["cyclin kinases and cell division", "aspirin and stroke"]

# mlflow 3.17's SQL store still uses a loader strategy that SQLAlchemy 2.1 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@dataclass
class Runs:
    home: Path
    first: TuneResult
    second: TuneResult
    steps: list[tuple[int, int, float]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    home = tmp_path_factory.mktemp("omni_home")
    steps: list[tuple[int, int, float]] = []
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, home)
        mp.delenv("OMNI_MLFLOW_URI", raising=False)
        reload_settings()
        config = TuneConfig(batch_size=4, max_steps=2, max_length=32, hard_negatives=True)
        first = tune(
            PAIRS, NAME, config=config, progress=lambda s, t, loss: steps.append((s, t, loss))
        )
        config = TuneConfig(batch_size=4, max_steps=1, max_length=32, hard_negatives=False)
        second = tune(PAIRS[:4], NAME, config=config)
        yield Runs(home, first, second, steps)
    reload_settings()


def test_training_runs_and_logs_to_mlflow(runs: Runs) -> None:
    first = runs.first
    assert first.train.steps == 2
    assert [s for s, _, _ in runs.steps] == [1, 2] and all(t == 2 for _, t, _ in runs.steps)
    assert all(np.isfinite(loss) for _, _, loss in runs.steps)
    assert np.isfinite(first.train.final_loss)
    assert tracking_uri().startswith("sqlite:///") and (runs.home / "mlflow.db").is_file()
    client = configure_mlflow().client
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["pairs"] == str(len(PAIRS))
    assert run.data.params["batch_size"] == "4" and run.data.params["seed"] == "0"
    assert run.data.params["device"] == first.train.device
    history = client.get_metric_history(first.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    # artifacts live under $OMNI_HOME/mlartifacts and are used in place
    assert first.path.is_relative_to(runs.home / "mlartifacts")
    assert (first.path / "config.json").is_file() and (first.path / "tokenizer.json").is_file()


def test_tuned_model_loads_and_differs_from_base(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the PyTorch backend: what training saved, loaded as is (no ONNX export in this test)
    monkeypatch.setenv("OMNI_EMBED_BACKEND", "torch")
    tuned = MiniLMEmbedder(model_path=runs.first.path, precision="fp32").embed(PROBE)
    base = MiniLMEmbedder(precision="fp32").embed(PROBE)
    assert tuned.shape == base.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    assert float(np.abs(tuned - base).max()) > 1e-4


def test_versions_increment_and_resolve(runs: Runs) -> None:
    assert (runs.first.version, runs.second.version) == (1, 2)
    assert registered_versions(NAME) == [1, 2]
    assert tuned_model_path(f"{NAME}/1") == runs.first.path
    assert tuned_model_path(f"{NAME}/2") == runs.second.path != runs.first.path
    configure_mlflow().client.set_registered_model_alias(NAME, "champion", "1")
    assert tuned_model_path(f"{NAME}@champion") == runs.first.path


def test_remote_artifacts_are_downloaded_once(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    # treat the artifact store as remote: the version is fetched with mlflow's own downloader
    # into $OMNI_HOME/models/<name>/<version>/, then served from there
    import core.rag.tune as tune_module

    use_home(monkeypatch, runs.home)
    monkeypatch.setattr(tune_module, "local_path", lambda uri: None)
    cached = runs.home / "models" / NAME / "2"
    assert tuned_model_path(f"{NAME}/2") == cached
    assert (cached / "config.json").is_file() and (cached / "model.safetensors").is_file()
    stamp = (cached / "config.json").stat().st_mtime_ns
    assert tuned_model_path(f"{NAME}/2") == cached
    assert (cached / "config.json").stat().st_mtime_ns == stamp
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".download-")]


def test_errors(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    use_home(monkeypatch, runs.home)
    with pytest.raises(ValidationError, match="No training pairs"):
        tune([], NAME)
    with pytest.raises(ValidationError, match="No training pairs"):
        tune([("  ", "passage"), ("query", "")], NAME)
    with pytest.raises(NotFound, match="/99"):
        tuned_model_path(f"{NAME}/99")
    with pytest.raises(NotFound):
        tuned_model_path("no-such-model/1")
    with pytest.raises(NotFound):
        tuned_model_path(f"{NAME}@no-such-alias")
    with pytest.raises(ValidationError, match="name/version"):
        tuned_model_path(NAME)
    with pytest.raises(ValidationError, match="Model name"):
        tune(PAIRS, "bad name/with slash")
    # an unreachable tracking server fails at once, before any training
    monkeypatch.setenv("OMNI_MLFLOW_URI", "http://127.0.0.1:9")
    reload_settings()
    with pytest.raises(ConfigurationError, match="cannot be reached"):
        tune(PAIRS, NAME)
    with pytest.raises(ConfigurationError, match="cannot be reached"):
        tuned_model_path(f"{NAME}/1")
    monkeypatch.delenv("OMNI_MLFLOW_URI")
    reload_settings()


def test_pairs_split_and_hard_negatives() -> None:
    corpus = {
        "d1": BeirDocument("d1", "Kinases", "Cyclin kinases drive the cycle."),
        "d2": BeirDocument("d2", "", "Aspirin and stroke."),
        "d3": BeirDocument("d3", "Cycle", "The cell cycle has four phases."),
    }
    data = BeirDataset(
        corpus=corpus,
        queries={"q1": "cell cycle kinases", "q2": "aspirin", "q3": "unjudged"},
        qrels={"q1": {"d1": 1, "d3": 0}, "q2": {"d2": 2}},
    )
    pairs = pairs_from_beir(data)
    assert pairs == [
        ("cell cycle kinases", "Kinases Cyclin kinases drive the cycle."),
        ("aspirin", "Aspirin and stroke."),
    ]
    assert pairs_from_beir(data, query_ids=["q2"]) == [pairs[1]]
    assert clean_pairs([*pairs, pairs[0], (" aspirin ", "Aspirin and stroke. ")]) == pairs
    texts = [doc.full_text for doc in corpus.values()]
    negatives = mine_hard_negatives(pairs, texts)
    assert negatives[0] == "Cycle The cell cycle has four phases."  # best BM25 non-positive
    assert negatives[1] == ""  # no other passage shares a term with "aspirin"
    ids = [f"q{i}" for i in range(10)]
    tune_ids, held = split_queries(ids, 0.2, seed=0)
    assert len(held) == 2 and set(tune_ids) | set(held) == set(ids)
    assert not set(tune_ids) & set(held)
    assert split_queries(list(reversed(ids)), 0.2, seed=0) == (tune_ids, held)
