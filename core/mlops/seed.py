"""Demo model operations: the bike-demand model in MLflow, its production stream, drift monitors
with a year of results, knowledge-base questions whose topic shifts, and A/B experiments.

- Version 1 is trained on 2011 (champion); version 2 on 2011 to mid-2012 (challenger, waiting
  for an engineer to promote it).
- The inference log holds version 1's predictions with their actuals: 2011 (its training year,
  logged as the monitor's reference) and 2012 hour by hour, the "production" stream. 2012 differs
  from 2011 for real: the seasons move the weather features week by week, the year is one the
  model never saw, and rentals grew by about two thirds, which version 1 underestimates: its
  error rises (performance drift). Version 2 learnt the growth from 2012's first half.
- A weekly monitor compares each 2012 week with 2011 and raises alerts; its MAE limit is 1.5 x
  version 1's validation MAE from MLflow.
- The knowledge base gets questions over the last ten weeks: GDPR questions first, then
  questions about the EU AI Act, which the collection does not cover; an embedding monitor finds
  the shift.

MLflow is not part of the seeding transaction. Should the database part fail after the models
were registered, a second seeding reuses the registered versions (tagged `omni.demo`) instead of
registering more.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.demo.registry import SeedContext, seeder
from core.mlops import bike, inference
from core.mlops.aliases import CHALLENGER, CHAMPION
from core.mlops.models import AliasEvent, Monitor
from core.mlops.monitor_run import check_windows
from core.mlops.monitors import EMBEDDING_COLUMN
from core.mlops.tracking import Tracking, configure_mlflow

ENGINEER = "demo-ml"
DEMO_TAG = "omni.demo"
REFERENCE = (datetime(2011, 1, 1, tzinfo=UTC), datetime(2012, 1, 1, tzinfo=UTC))
STREAM_END = datetime(2013, 1, 1, tzinfo=UTC)
AB_TEST = (datetime(2012, 7, 1, tzinfo=UTC), datetime(2012, 9, 1, tzinfo=UTC))
AB_EXPERIMENT = "bike-demand-v1-v2"

GDPR_TOPICS = (
    "data portability",
    "the right to erasure",
    "withdrawing consent",
    "personal data breach notification",
    "processing children's data",
    "appointing a data protection officer",
    "transfers of personal data outside the EU",
    "a data protection impact assessment",
    "legitimate interest as a legal basis",
    "automated decisions and profiling",
    "records of processing activities",
    "the right of access",
)
GDPR_TEMPLATES = (
    "What does the GDPR require for {t}?",
    "How long do we have to respond when it comes to {t}?",
    "Which article covers {t}?",
    "Who is responsible for {t} under the regulation?",
    "Are there exceptions to {t}?",
)
AI_ACT_SYSTEMS = (
    "a CV screening model",
    "a credit scoring model",
    "a customer support chatbot",
    "emotion recognition at work",
    "remote biometric identification",
    "a general-purpose AI model",
)
AI_ACT_TEMPLATES = (
    "Is {t} a high-risk AI system under the AI Act?",
    "What transparency duties does the AI Act set for {t}?",
    "Does {t} need a conformity assessment before release?",
    "When do the AI Act obligations for {t} apply?",
)


def _registered(tracking: Tracking) -> list[Any]:
    """Demo versions registered by an earlier (failed) seeding, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        found = tracking.client.search_model_versions(f"name = '{bike.MODEL_NAME}'")
    except MlflowException:
        return []
    demo = [v for v in found if (v.tags or {}).get(DEMO_TAG) == "true"]
    return sorted(demo, key=lambda v: int(v.version))


def _models(tracking: Tracking) -> tuple[str, str, float]:
    """(v1, v2, v1's validation MAE), registering them unless a failed seeding already did."""
    existing = _registered(tracking)
    if len(existing) >= 2:
        v1, v2 = str(existing[0].version), str(existing[1].version)
        run = tracking.client.get_run(existing[0].run_id)
        return v1, v2, float(run.data.metrics["val_mae"])
    tags = {DEMO_TAG: "true"}
    first = bike.train_and_register(
        tracking,
        train_start=date(2011, 1, 1),
        train_end=date(2011, 12, 31),
        description="Hourly rentals from the year, calendar and weather, trained on 2011.",
        tags=tags,
    )
    second = bike.train_and_register(
        tracking,
        train_start=date(2011, 1, 1),
        train_end=date(2012, 6, 30),
        description="Retrained with the first half of 2012: learns the growth in rentals.",
        tags=tags,
    )
    return first.version, second.version, float(first.metrics["val_mae"])


def _aliases(session: Session, tracking: Tracking, v1: str, v2: str, anchor: datetime) -> None:
    client = tracking.client
    client.set_registered_model_alias(bike.MODEL_NAME, CHAMPION, v1)
    client.set_registered_model_alias(bike.MODEL_NAME, CHALLENGER, v2)
    session.add_all(
        [
            AliasEvent(
                model_name=bike.MODEL_NAME,
                alias=CHAMPION,
                version=v1,
                previous_version=None,
                action="promote",
                reason="First production model: validation MAE on late 2011 is acceptable.",
                actor=ENGINEER,
                ts=anchor - timedelta(days=60),
            ),
            AliasEvent(
                model_name=bike.MODEL_NAME,
                alias=CHALLENGER,
                version=v2,
                previous_version=None,
                action="promote",
                reason="Retrained on data to mid-2012 after the performance alerts; to compare.",
                actor=ENGINEER,
                ts=anchor - timedelta(days=3),
            ),
        ]
    )


def _stream(session: Session, hours: pd.DataFrame, model: Any, v1: str) -> int:
    stream = bike.production_stream(model, hours)
    stream = stream[(stream["ts"] >= REFERENCE[0]) & (stream["ts"] < STREAM_END)]
    return inference.append(session, bike.MODEL_NAME, v1, stream, list(bike.FEATURES))


def _ab_outcomes(hours: pd.DataFrame, first: Any, second: Any) -> dict[str, Any]:
    """The v1-vs-v2 experiment, measured: for each hour of July and August 2012, whether each
    version's forecast was within 50 rentals of the actual count."""
    window = hours[(hours["ts"] >= AB_TEST[0]) & (hours["ts"] < AB_TEST[1])]
    within = {
        key: (abs(bike.predict(model, window) - window[bike.TARGET].to_numpy()) < 50)
        for key, model in (("v1", first), ("v2", second))
    }
    return {
        ts.isoformat(): (ts.to_pydatetime(), {k: float(v[i]) for k, v in within.items()})
        for i, ts in enumerate(window["ts"])
    }


def _questions(session: Session, rng: random.Random, anchor: datetime) -> int:
    """Ten weeks of knowledge-base questions: six of GDPR only, then AI Act questions mixed in."""
    from core.rag.models import Collection, QueryLog
    from core.rag.seed import COLLECTION

    collection_id = session.scalar(select(Collection.id).where(Collection.name == COLLECTION))
    start = anchor - timedelta(weeks=10)
    rows = []
    for week in range(10):
        shifted = week >= 8
        for _ in range(rng.randint(22, 30)):
            if shifted and rng.random() < 0.7:
                text = rng.choice(AI_ACT_TEMPLATES).format(t=rng.choice(AI_ACT_SYSTEMS))
            else:
                text = rng.choice(GDPR_TEMPLATES).format(t=rng.choice(GDPR_TOPICS))
            ts = start + timedelta(weeks=week, seconds=rng.randint(0, 7 * 86400 - 1))
            rows.append(
                {
                    "ts": ts,
                    "actor": rng.choice(("demo-compliance", "demo-ml", "demo-admin")),
                    "collection_id": collection_id,
                    "question": text,
                    "answer": "(demo history: the answer was not kept)",
                    "status": "answered",
                }
            )
    session.execute(insert(QueryLog), rows)
    return len(rows)


def _monitors(session: Session, features: list[str], mae: float, anchor: datetime) -> list[Monitor]:
    model_monitor = Monitor(
        name="Bike demand, weekly",
        kind="model",
        target=bike.MODEL_NAME,
        reference_start=REFERENCE[0],
        reference_end=REFERENCE[1],
        window="week",
        features_json=json.dumps(features),
        thresholds_json=json.dumps({}),
        tests_json=json.dumps({}),
        drift_share=0.5,
        task="regression",
        performance_threshold=round(1.5 * mae, 1),
        created_by=ENGINEER,
    )
    questions = Monitor(
        name="Knowledge-base questions",
        kind="embeddings",
        target="*",
        reference_start=anchor - timedelta(weeks=10),
        reference_end=anchor - timedelta(weeks=6),
        window="week",
        features_json=json.dumps([EMBEDDING_COLUMN]),
        created_by=ENGINEER,
    )
    session.add_all([model_monitor, questions])
    session.flush()
    return [model_monitor, questions]


@seeder("mlops", order=70)
def seed_mlops(ctx: SeedContext) -> str:
    from core.mlops.experiments_seed import seed_experiments

    tracking = configure_mlflow()
    v1, v2, mae = _models(tracking)
    _aliases(ctx.session, tracking, v1, v2, ctx.anchor)
    hours = bike.load_hours()
    first = bike.load_version(tracking, bike.MODEL_NAME, v1)
    second = bike.load_version(tracking, bike.MODEL_NAME, v2)
    logged = _stream(ctx.session, hours, first, v1)
    asked = _questions(ctx.session, ctx.rng, ctx.anchor)
    monitors = _monitors(ctx.session, list(bike.FEATURES), mae, ctx.anchor)
    alerts = 0
    for monitor in monitors:
        alerts += len(check_windows(ctx.session, monitor, until=ctx.anchor).alerts)
    experiments = seed_experiments(
        ctx.session, ctx.rng, ctx.anchor, real={AB_EXPERIMENT: _ab_outcomes(hours, first, second)}
    )
    return (
        f"{bike.MODEL_NAME} v{v1} (champion) and v{v2} (challenger) in MLflow, {logged} logged "
        f"predictions, {asked} knowledge-base questions, {len(monitors)} monitors with {alerts} "
        f"alerts; {experiments}"
    )
