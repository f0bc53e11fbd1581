"""Overload sweep on loopback with wrk: closed-loop POST /rank at rising concurrency (real users,
100 candidates each); per level requests/s, goodput (200s/s), shed (503s), other errors, client
timeouts and the latency percentiles of the admitted (200) requests; then the overload goals.

Goals, at 4x the saturating concurrency (the lowest level reaching 95% of the peak goodput):
goodput >= 80% of the peak, admitted p99 <= 3x the p99 at saturation, no client timeouts, every
refused request a 503; at every level 0 errors other than 503.

Needs the local pipeline's outputs (`make run`) and wrk (Debian package `wrk`).

    .venv/bin/python benchmarks/serve_load.py [--levels 1,2,4,8,16,32,64,128 --seconds 10]
    .venv/bin/python benchmarks/serve_load.py --retry-after ignore   # clients that retry at once
    .venv/bin/python benchmarks/serve_load.py --max-queued-requests -1 --max-ongoing-requests 64
        # no admission control (the service before back-pressure), for comparison

Latencies come from the Lua script (benchmarks/serve_load.lua), not wrk's histogram, which mixes
fast 503s with the 200s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
from _serving import add_args, latest_run, requests

from lr_recsys.feature_store import StoreConfig
from lr_recsys.registry import RegistryConfig
from lr_recsys.serve import local
from lr_recsys.serve.ranker import ServeConfig
from serving.app import build_app

LUA = Path(__file__).with_name("serve_load.lua")


@dataclass
class Level:
    connections: int
    seconds: float
    rps: float  # every response, per second
    goodput: float  # 200s per second
    shed: int  # 503s
    other: int  # responses neither 200 nor 503, and socket errors other than timeouts
    timeouts: int  # wrk's client timeouts
    p50: float | None  # admitted (200) latency, ms
    p90: float | None
    p99: float | None


def run_level(url: str, bodies: Path, connections: int, seconds: float, timeout_s: float,
              work: Path, retry_after: str) -> Level:  # fmt: skip
    """One wrk run, one connection per thread (the Lua script's latencies need it)."""
    out = work / f"wrk-{connections}.txt"
    cmd = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{seconds:g}s",
           f"--timeout={timeout_s:g}s", "-s", str(LUA), f"{url}/rank", "--", str(bodies), str(out),
           retry_after]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    status: dict[int, int] = {}
    errors: dict[str, int] = {}
    admitted: list[float] = []
    duration_us = 1
    for line in out.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "status":
            status[int(rest[0])] = status.get(int(rest[0]), 0) + int(rest[1])
        elif kind == "ms":
            admitted.append(float(rest[0]))
        elif kind == "errors":
            errors[rest[0]] = int(rest[1])
        elif kind == "total":
            duration_us = int(rest[1])
    wall = duration_us / 1e6
    ok, shed = status.get(200, 0), status.get(503, 0)
    other = sum(n for code, n in status.items() if code not in (200, 503))
    other += errors["connect"] + errors["read"] + errors["write"]  # "status" = non-2xx: above
    q = np.percentile(admitted, [50, 90, 99]) if admitted else [None] * 3
    return Level(connections, round(wall, 1), sum(status.values()) / wall, ok / wall, shed, other,
                 errors["timeout"], *(None if v is None else float(v) for v in q))  # fmt: skip


def goals(levels: list[Level]) -> list[tuple[str, bool]]:
    """The overload goals (module docstring) over a sweep."""
    peak = max(lv.goodput for lv in levels)
    sat = next(lv for lv in levels if lv.goodput >= 0.95 * peak)
    over = [lv for lv in levels if lv.connections >= 4 * sat.connections]
    checks = [(f"saturation at {sat.connections} connections ({sat.goodput:.1f}/s; peak "
               f"{peak:.1f}/s)", True)]  # fmt: skip
    if not over:
        return [*checks, (f"a level >= 4x saturation ({4 * sat.connections}) was swept", False)]
    for lv in over:
        tag = f"{lv.connections} conns ({lv.connections / sat.connections:.0f}x saturation)"
        checks += [
            (f"{tag}: goodput {lv.goodput:.1f}/s >= 80% of peak ({0.8 * peak:.1f}/s)",
             lv.goodput >= 0.8 * peak),
            (f"{tag}: admitted p99 {lv.p99 or float('nan'):.0f} ms <= 3x saturation p99 "
             f"({3 * (sat.p99 or 0):.0f} ms)", lv.p99 is not None and lv.p99 <= 3 * (sat.p99 or 0)),
            (f"{tag}: client timeouts {lv.timeouts} == 0", lv.timeouts == 0),
        ]  # fmt: skip
    checks.append(("0 errors other than 503 at every level", all(lv.other == 0 for lv in levels)))
    return checks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(p)
    p.add_argument("--levels", default="1,2,4,8,16,32,64,128", help="connections per level")
    p.add_argument("--seconds", type=float, default=10.0, help="per level")
    p.add_argument("--timeout", type=float, default=10.0, help="wrk's client timeout, seconds")
    p.add_argument("--max-ongoing-requests", type=int, default=ServeConfig().max_ongoing_requests)
    p.add_argument("--max-queued-requests", type=int, default=ServeConfig().max_queued_requests)
    p.add_argument(
        "--retry-after",
        choices=["honour", "ignore"],
        default="honour",
        help="clients wait a 503's Retry-After (honour) or retry at once (ignore)",
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    bodies = work / "bodies.jsonl"
    bodies.write_text("".join(json.dumps(b) + "\n" for b in requests(latest_run(args.pipeline_root), args.candidates)))  # fmt: skip
    cfg = ServeConfig(registry=RegistryConfig(tracking_uri=args.tracking_uri),
                      store=StoreConfig(repo_dir=args.feature_repo), port=args.port,
                      explain_queue=work / "explain_queue.sqlite",
                      max_ongoing_requests=args.max_ongoing_requests,
                      max_queued_requests=args.max_queued_requests)  # fmt: skip
    levels: list[Level] = []
    try:
        url = local.start(build_app(cfg.model_dump(mode="json")), cfg.host, cfg.port, num_cpus=2)
        with httpx.Client() as http:  # warm up
            for line in bodies.read_text().splitlines()[:20]:
                http.post(f"{url}/rank", content=line,
                          headers={"content-type": "application/json"}).raise_for_status()  # fmt: skip
        for c in (int(x) for x in args.levels.split(",")):
            levels.append(
                run_level(url, bodies, c, args.seconds, args.timeout, work, args.retry_after)
            )
            time.sleep(1.0)  # let the queue drain between levels
        alive = httpx.get(f"{url}/healthz", timeout=10).status_code
    finally:
        local.stop()
    print(f"{version}; max_ongoing_requests {cfg.max_ongoing_requests}, max_queued_requests "
          f"{cfg.max_queued_requests}, retry_after_s {cfg.retry_after_s:g}; {args.seconds:g} s per "
          f"level, client timeout {args.timeout:g} s, clients {args.retry_after} Retry-After")  # fmt: skip
    print(f"{'conns':>5} {'req/s':>8} {'goodput':>8} {'shed':>7} {'other':>5} {'tmout':>5} "
          f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}   (latency: admitted 200s only)")  # fmt: skip
    for lv in levels:
        ms = " ".join(
            f"{v:8.1f}" if v is not None else f"{'-':>8}" for v in (lv.p50, lv.p90, lv.p99)
        )
        print(f"{lv.connections:5d} {lv.rps:8.1f} {lv.goodput:8.1f} {lv.shed:7d} {lv.other:5d} "
              f"{lv.timeouts:5d} {ms}")  # fmt: skip
    print(f"/healthz after the sweep: {alive}")
    checks = goals(levels)
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    if args.json:
        args.json.write_text(json.dumps({"wrk": version, "retry_after": args.retry_after, "config": {
            "max_ongoing_requests": cfg.max_ongoing_requests,
            "max_queued_requests": cfg.max_queued_requests}, "levels": [asdict(lv) for lv in levels],
            "goals": [{"goal": t, "met": ok} for t, ok in checks]}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
