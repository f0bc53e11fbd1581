"""Refresh vs full run: wall time of the training pipeline on ml-100k as of the (1 - f) quantile
of its timestamps, then of the refresh pipeline on the last f of the interactions (default 1%),
with the main job's settings (`make run`). Prints both, the ratio (goal <= 20%), the refresh's
step metrics (new pairs, LLM requests answered by the cache vs generated) and writes JSON.

Both runs share the LLM cache (``--cache``), so state which cache you started from: the full run
against a warm cache is the fair comparison (a cold one adds the LLM time of 1,000 pairs).

    .venv/bin/python benchmarks/refresh_time.py --root runs/bench_refresh
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import load_tables, prepare
from pipelines.runner import run_local


def metrics(run_dir: Path, task: str) -> dict:
    out = json.loads((run_dir / task / "executor_output.json").read_text())
    return out["artifacts"]["metrics"]["artifacts"][0]["metadata"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("runs/bench_refresh"))
    p.add_argument("--cache", default="data/llm_cache.sqlite")
    p.add_argument(
        "--fraction", type=float, default=0.01, help="share of interactions that are new"
    )
    p.add_argument("--llm-pairs", type=int, default=1000, help="the full run's LLM budget")
    p.add_argument("--refresh-llm-pairs", type=int, default=10, help="new pairs the LLM explains")
    p.add_argument("--serving-users", type=int, default=25)
    p.add_argument("--tuned-config", default="configs/tuned/ml-100k.toml")
    p.add_argument("--mode", default="finetune", choices=["finetune", "retrain"])
    p.add_argument("--skip-full", action="store_true", help="refresh the root's existing run")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/refresh_time.json"))
    args = p.parse_args()
    root = args.root.resolve()
    cfg = DataConfig()
    ts = prepare(load_tables(cfg), cfg).examples[schema.TIMESTAMP].to_numpy()
    until = int(np.quantile(ts, 1.0 - args.fraction))
    common = {
        "cache_path": args.cache, "tracking_uri": f"sqlite:///{root}/mlflow.db",
        "feature_repo_dir": str(root / "feature_repo"), "explain_queue": str(root / "queue.sqlite"),
        "serving_users": args.serving_users, "tuned_config": args.tuned_config,
    }  # fmt: skip
    result: dict = {"until": until, "fraction": args.fraction}
    if not args.skip_full:
        t0 = time.perf_counter()
        full = run_local({**common, "until": until, "llm_pairs": args.llm_pairs, "seeds": "0"}, root / "pipeline")  # fmt: skip
        result["full_s"] = round(time.perf_counter() - t0, 1)
        result["full_run"] = str(full)
        result["full_explain"] = metrics(full, "explain-op")
        result["full_served"] = metrics(full, "served-op")
    t0 = time.perf_counter()
    refresh = run_local({**common, "llm_pairs": args.refresh_llm_pairs, "mode": args.mode}, root / "pipeline", "refresh")  # fmt: skip
    result["refresh_s"] = round(time.perf_counter() - t0, 1)
    result["refresh_run"] = str(refresh)
    for task in ("refresh-ingest-op", "refresh-features-op", "refresh-train-op", "refresh-served-op", "promote-op"):  # fmt: skip
        result[task] = metrics(refresh, task)
    if "full_s" in result:
        result["ratio"] = result["refresh_s"] / result["full_s"]
        print(f"full run {result['full_s']:.0f} s, refresh {result['refresh_s']:.0f} s: "
              f"{result['ratio']:.1%} of the full run (goal <= 20%)")  # fmt: skip
    ing, feats = result["refresh-ingest-op"], result["refresh-features-op"]
    print(f"new interactions {ing['new_examples']} ({ing['new_fraction']:.2%} of {ing['old_examples']}); "
          f"LLM: {feats.get('llm_requested_pairs', 0)} new pairs requested, "
          f"{feats.get('llm_generated', 0)} sentences generated, {feats.get('llm_cache_hits', 0)} from the cache")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
