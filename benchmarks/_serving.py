"""Shared by the serving benchmarks: deploy the real app (and a no-op twin) from the local
pipeline's outputs (`make run`), pick real users and 100 candidates, summarise latencies."""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import FastAPI
from ray import serve

from lr_recsys import schema
from lr_recsys.serve.api import RankRequest, RankResponse


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", default="sqlite:///runs/mlflow.db", help="from `make run`")
    p.add_argument("--feature-repo", type=Path, default=Path("runs/feature_repo"))
    p.add_argument("--pipeline-root", type=Path, default=Path("runs/pipeline"))
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--candidates", type=int, default=100)


def latest_run(root: Path) -> Path:
    runs = sorted(
        (p for p in root.glob("*") if (p / "explain-op" / "explanations" / "serving_pairs.parquet").exists()),
        key=lambda p: p.stat().st_mtime,
    )  # fmt: skip
    if not runs:
        raise SystemExit(f"no pipeline run under {root}: run `make run` first")
    return runs[-1]


def requests(run_dir: Path, n_candidates: int) -> list[dict]:
    """One request body per sampled user: their precomputed serving candidates first, then the
    most popular items they have not rated, ``n_candidates`` in all."""
    from lr_recsys.candidates import popularity, rated_items
    from lr_recsys.data import Prepared

    prepared = Prepared.load(run_dir / "ingest-op" / "prepared")
    serving = pd.read_parquet(run_dir / "explain-op" / "explanations" / "serving_pairs.parquet")
    order = list(popularity(prepared).index)
    rated_by = rated_items(prepared)
    bodies = []
    for user, group in serving.groupby(schema.USER_ID):
        rated = rated_by.get(user, set())
        first = list(group[schema.ITEM_ID])
        rest = [i for i in order if i not in rated and i not in first]
        bodies.append(
            {"user_id": user, "candidate_item_ids": (first + rest)[:n_candidates], "k": 10}
        )
    return bodies


noop_app = FastAPI(title="no-op twin")


@serve.deployment(name="noop", ray_actor_options={"num_cpus": 0.5})
@serve.ingress(noop_app)
class NoopRanker:
    """Same ingress, same request/response models, no work: the floor Ray Serve + HTTP set."""

    @noop_app.post("/rank", response_model=RankResponse)
    def rank(self, request: RankRequest) -> RankResponse:
        return RankResponse(model_version="0", model="noop", user_id=request.user_id, cold_start=False,
                            candidates="request", fallbacks=0, items=[], timings_ms={})  # fmt: skip


def pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {f"p{q}": float(np.percentile(a, q)) for q in (50, 95, 99)} | {"mean": float(a.mean())}
