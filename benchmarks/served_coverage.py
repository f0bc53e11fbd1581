"""Served-text coverage: how many items the ranking service returns carry LLM text, and that no
known user's candidate falls back to zero explanation vectors.

Ranks in-process with the same ``Ranker`` the Ray Serve app runs (champion from the registry,
features from the online store), over (a) the serving users of the pipeline's served-text step
(``--serving-users``: the run's ``serving_users`` parameter, 0 = all) with the API's default
``k``, and (b) every user the store knows, over the candidate generator's items. Prints the
coverage (goal >= 95% ``source: llm``) and the fallback count (goal 0), as JSON too.

    .venv/bin/python benchmarks/served_coverage.py --serving-users 25
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from lr_recsys import schema
from lr_recsys.data import Prepared
from lr_recsys.feature_store import StoreConfig
from lr_recsys.registry import RegistryConfig
from lr_recsys.serve.ranker import Ranker, ServeConfig
from lr_recsys.steps.served import select_users


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracking-uri", default="sqlite:///runs/mlflow.db")
    p.add_argument("--feature-repo", type=Path, default=Path("runs/feature_repo"))
    p.add_argument("--prepared", type=Path, help="the run's ingest-op/prepared (default: latest)")
    p.add_argument("--pipeline-root", type=Path, default=Path("runs/pipeline"))
    p.add_argument("--serving-users", type=int, default=25, help="as the run's serving_users")
    p.add_argument("--k", type=int, default=10, help="the API's default k")
    args = p.parse_args()
    prepared_dir = args.prepared or latest_prepared(args.pipeline_root)
    prepared = Prepared.load(prepared_dir)
    counts = prepared.examples[schema.USER_ID].value_counts()
    users = sorted(prepared.examples[schema.USER_ID].unique())
    serving = select_users(users, counts, args.serving_users)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServeConfig(registry=RegistryConfig(tracking_uri=args.tracking_uri),
                          store=StoreConfig(repo_dir=args.feature_repo), model_cache=Path(tmp),
                          explain_queue=None)  # fmt: skip
        ranker = Ranker(cfg)
        ranker.load()
        t0 = time.perf_counter()
        returned: Counter[str] = Counter()
        for user in serving:
            for item in ranker.rank(user, k=args.k).items:
                returned[item.explanation.source] += 1
        fallbacks = 0
        candidates: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for user in users:
            out = ranker.rank(user, k=cfg.candidate_cap)
            fallbacks += out.fallbacks
            for item in out.items:
                candidates[item.explanation.source] += 1
                if item.explanation.reason:
                    reasons[item.explanation.reason] += 1
        seconds = time.perf_counter() - t0
    total = sum(returned.values())
    out = {
        "model_version": ranker.current.version, "serving_users": len(serving), "k": args.k,
        "returned_items": total, "returned_by_source": dict(returned),
        "served_llm_coverage": returned["llm"] / total if total else 0.0,
        "known_users": len(users), "candidates_scored": sum(candidates.values()),
        "candidates_by_source": dict(candidates), "fallbacks": fallbacks,
        "fallback_reasons": dict(reasons), "seconds": round(seconds, 1), "prepared": str(prepared_dir),
    }  # fmt: skip
    print(f"serving users {len(serving)}, k={args.k}: {returned['llm']}/{total} returned items "
          f"carry LLM text = {out['served_llm_coverage']:.1%} (goal >= 95%)")  # fmt: skip
    print(f"all {len(users)} known users x {cfg.candidate_cap} candidates: sources "
          f"{dict(candidates)}, fallbacks {fallbacks} (goal 0)")  # fmt: skip
    print(json.dumps(out))


def latest_prepared(root: Path) -> Path:
    runs = sorted(root.glob("*/ingest-op/prepared"), key=lambda p: p.stat().st_mtime)
    runs += sorted(root.glob("*/refresh-ingest-op/prepared"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no pipeline run under {root}: run `make run` first")
    return max(runs, key=lambda p: p.stat().st_mtime)


if __name__ == "__main__":
    main()
