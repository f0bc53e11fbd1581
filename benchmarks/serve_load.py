"""Bounded concurrent load on loopback: C clients (threads, one HTTP connection each) send
/rank requests for real users with 100 candidates each for D seconds; prints throughput, latency
percentiles and the error count (goal: 0 errors).

Needs the local pipeline's outputs (`make run`).

    .venv/bin/python benchmarks/serve_load.py [--clients 16 --seconds 60]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter

import httpx
from _serving import add_args, latest_run, pct, requests

from lr_recsys.feature_store import StoreConfig
from lr_recsys.registry import RegistryConfig
from lr_recsys.serve import local
from lr_recsys.serve.ranker import ServeConfig
from serving.app import build_app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(p)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    bodies = requests(latest_run(args.pipeline_root), args.candidates)
    cfg = ServeConfig(registry=RegistryConfig(tracking_uri=args.tracking_uri),
                      store=StoreConfig(repo_dir=args.feature_repo), port=args.port)  # fmt: skip
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def client(idx: int, url: str, stop_at: float) -> None:
        with httpx.Client(timeout=30) as http:
            i = idx
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    r = http.post(f"{url}/rank", json=bodies[i % len(bodies)])
                    ok = r.status_code == 200 and len(r.json()["items"]) == 10
                    kind = None if ok else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                ms = 1e3 * (time.perf_counter() - t0)
                with lock:
                    if kind is None:
                        latencies.append(ms)
                    else:
                        errors[kind] += 1
                i += args.clients

    try:
        url = local.start(build_app(cfg.model_dump(mode="json")), cfg.host, cfg.port, num_cpus=2)
        with httpx.Client() as http:  # warm up
            for b in bodies[:20]:
                http.post(f"{url}/rank", json=b).raise_for_status()
        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c, url, start + args.seconds))
                   for c in range(args.clients)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        local.stop()
    q = pct(latencies) if latencies else {}
    out = {"clients": args.clients, "seconds": round(wall, 1), "ok": len(latencies),
           "errors": sum(errors.values()), "error_kinds": dict(errors),
           "throughput_rps": len(latencies) / wall, "latency_ms": q}  # fmt: skip
    print(f"{args.clients} clients x {wall:.0f} s: {len(latencies)} ok, {out['errors']} errors, "
          f"{out['throughput_rps']:.1f} req/s")  # fmt: skip
    if q:
        print("latency ms: " + ", ".join(f"{k} {v:.1f}" for k, v in q.items()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
