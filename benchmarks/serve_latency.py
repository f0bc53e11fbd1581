"""Ranking latency: the real /rank app vs a no-op Ray Serve deployment with the same FastAPI
ingress and request/response models, both up at once on this machine, requests interleaved.

Needs the local pipeline's outputs (`make run`: MLflow champion, Feast online store). The real
app computes the distilled explanation vectors of every candidate without LLM text at request
time (and queues the returned ones, here to a temporary queue). Prints
p50/p95/p99 for both, the p99 ratio (goal <= 1.5x) and where the real app's time goes (feature
fetch, model, the rest = Serve proxy + HTTP + (de)serialisation).

    .venv/bin/python benchmarks/serve_latency.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _serving import NoopRanker, add_args, latest_run, pct, requests

from lr_recsys.feature_store import StoreConfig
from lr_recsys.registry import RegistryConfig
from lr_recsys.serve import local
from lr_recsys.serve.ranker import ServeConfig
from serving.app import build_app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(p)
    p.add_argument("--requests", type=int, default=500, help="per app")
    p.add_argument("--warmup", type=int, default=30)
    args = p.parse_args()
    bodies = requests(latest_run(args.pipeline_root), args.candidates)
    # the benchmark's traffic must not reach the run's explain queue: a queue of its own
    queue = Path(tempfile.mkdtemp(prefix="lr-recsys-bench-")) / "queue.sqlite"
    cfg = ServeConfig(registry=RegistryConfig(tracking_uri=args.tracking_uri),
                      store=StoreConfig(repo_dir=args.feature_repo), port=args.port,
                      explain_queue=queue)  # fmt: skip
    try:
        real = local.start(build_app(cfg.model_dump(mode="json")), cfg.host, cfg.port, num_cpus=2)
        noop = local.start(NoopRanker.bind(), cfg.host, cfg.port, name="noop", route_prefix="/noop",
                           ready_path=None)  # fmt: skip
        client = httpx.Client(timeout=30)
        lat: dict[str, list[float]] = {"noop": [], "rank": []}
        server: dict[str, list[float]] = {"features": [], "model": [], "total": []}
        n_cands = len(bodies[0]["candidate_item_ids"])
        scored = {
            "candidates": 0,
            "distilled": 0,
            "fallback": 0,
        }  # explanation vectors per candidate
        for i in range(args.warmup + args.requests):
            body = bodies[i % len(bodies)]
            for name, url in (("noop", noop), ("rank", real)):
                t0 = time.perf_counter()
                r = client.post(f"{url}/rank", json=body)
                ms = 1e3 * (time.perf_counter() - t0)
                if r.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {r.status_code}: {r.text[:500]}")
                if i >= args.warmup:
                    lat[name].append(ms)
                    if name == "rank":
                        got = r.json()
                        for k, v in got["timings_ms"].items():
                            server[k].append(v)
                        scored["distilled"] += got["distilled"]
                        scored["fallback"] += got["fallbacks"]
                        scored["candidates"] += n_cands
        client.close()
    finally:
        local.stop()
    noop_p, rank_p = pct(lat["noop"]), pct(lat["rank"])
    share = {k: float(np.mean(v)) for k, v in server.items()}
    share["proxy_http_serialisation"] = rank_p["mean"] - share["total"]
    out = {
        "requests_per_app": args.requests, "candidates_per_request": n_cands, "users": len(bodies),
        "noop_ms": noop_p, "rank_ms": rank_p, "p99_ratio": rank_p["p99"] / noop_p["p99"],
        "p50_ratio": rank_p["p50"] / noop_p["p50"], "rank_mean_breakdown_ms": share,
        "candidate_vectors": scored,
    }  # fmt: skip
    print(f"{'':8}{'p50':>8}{'p95':>8}{'p99':>8}  (ms, {args.requests} sequential requests each, "
          f"{n_cands} candidates)")  # fmt: skip
    for name, q in (("no-op", noop_p), ("/rank", rank_p)):
        print(f"{name:8}{q['p50']:8.2f}{q['p95']:8.2f}{q['p99']:8.2f}")
    print(
        f"p99 ratio /rank : no-op = {out['p99_ratio']:.2f}x (goal <= 1.5x); p50 ratio {out['p50_ratio']:.2f}x"
    )
    print(
        "where /rank's mean time goes (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in share.items())
    )
    print(f"candidate explanation vectors: {scored['distilled']} of {scored['candidates']} distilled at "
          f"request time, {scored['fallback']} zero fallbacks, the rest the LLM's")  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
