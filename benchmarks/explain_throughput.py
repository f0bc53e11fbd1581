"""Explanation throughput: a naive llama-cpp-python loop vs the engine, on real ml-100k pairs.

(a) naive: one ``create_completion`` per prompt, KV cache reset before each, one model using
    both cores (2 threads), prompts in data order;
(b) engine, cold cache: the same work through the engine with its defaults (cache lookups,
    prefix-sharing order, batched decoding of 8 sequences whose common prefix is evaluated once,
    one in-process llama.cpp model with 2 threads);
(c) engine, warm cache: the same call again;
(d) with --ray: the engine on a Ray Data actor pool (one single-threaded model per core).

Both do exactly the same generation work (one CoT profile per distinct item, then a positive and
a negative explanation per pair, greedy decoding), so the ratio isolates the engine's mechanics.
The line "naive, profiles per pair" estimates a loop that also re-profiles every history item for
every pair. Every run happens in its own fresh process. Goals: engine >= 2x naive; warm >= 100x
faster than cold.

    python benchmarks/explain_throughput.py [--pairs 20] [--ray]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.backends import LLMConfig
from lr_recsys.explain.backends.base import Decoding
from lr_recsys.explain.cache import GenerationCache
from lr_recsys.explain.config import ExplainConfig
from lr_recsys.explain.engine import pairs_from_examples
from lr_recsys.explain.normalize import normalize
from lr_recsys.explain.prompts import (
    get_domain,
    get_variant,
    pair_prompt,
    profile_prefix,
    profile_prompt,
)
from lr_recsys.explain.run import build_engine


def pick_pairs(prepared, n: int):
    """The first n test-split pairs with a full 5-item history, one per user (real data)."""
    ex = prepared.split(schema.SPLIT_TEST)
    full = ex[ex[schema.HISTORY].map(lambda h: schema.PAD_ITEM not in h)]
    return pairs_from_examples(full.groupby(schema.USER_ID, sort=False).head(1).head(n))


def run_naive(prepared, pairs, cfg: ExplainConfig) -> dict:
    from lr_recsys.explain.backends.llamacpp import LlamaCppBackend

    domain, variant = get_domain(cfg.domain), get_variant(cfg.variant)
    texts = dict(zip(prepared.items[schema.ITEM_ID], prepared.items[schema.ITEM_TEXT], strict=True))
    items = sorted({i for p in pairs for i in (*p.history, p.item_id)})
    naive = LlamaCppBackend(n_threads=2, reset_each_call=True)
    dec = Decoding(max_tokens=cfg.llm.max_tokens)
    start = time.perf_counter()
    outs = naive.complete([profile_prompt(texts[i], domain) for i in items], dec)
    prof = {
        i: normalize(o.text, profile_prefix(domain)).text for i, o in zip(items, outs, strict=True)
    }
    prompts = [
        pair_prompt(
            kind,
            [(texts[h], prof[h]) for h in p.history],
            (texts[p.item_id], prof[p.item_id]),
            domain,
            variant,
        )
        for p in pairs
        for kind in ("positive", "negative")
    ]
    outs += naive.complete(prompts, dec)
    seconds = time.perf_counter() - start
    per_profile = sum(o.latency_s for o in outs[: len(items)]) / len(items)
    return {
        "seconds": seconds,
        "prompt_tokens": sum(o.prompt_tokens for o in outs),
        "completion_tokens": sum(o.completion_tokens for o in outs),
        "profiles": len(items),
        "per_profile_s": per_profile,
    }


def run_engine(prepared, pairs, cfg: ExplainConfig) -> dict:
    out = {}
    for label in ("cold", "warm"):
        cache = GenerationCache(cfg.cache_path)
        engine = build_engine(cfg, prepared, cache)
        start = time.perf_counter()
        engine.explain(pairs)
        out[label] = {
            "seconds": time.perf_counter() - start,
            "prompt_tokens": engine.stats.prompt_tokens,
            "completion_tokens": engine.stats.completion_tokens,
        }
        engine.runner.close()
        cache.close()
    return out


def child(args: argparse.Namespace) -> None:
    prepared = load_prepared(DataConfig(data_dir=args.data_dir))
    pairs = pick_pairs(prepared, args.pairs)
    cache_path = Path(tempfile.mkdtemp(prefix="lr_explain_bench_")) / "cache.sqlite"
    if args.child == "naive":
        result = run_naive(prepared, pairs, ExplainConfig())
    elif args.child == "engine":
        result = run_engine(prepared, pairs, ExplainConfig(cache_path=cache_path, progress=False))
    else:
        cfg = ExplainConfig(
            llm=LLMConfig(n_threads=1),
            executor="ray",
            workers=args.workers,
            cache_path=cache_path,
            progress=False,
        )
        result = run_engine(prepared, pairs, cfg)
    print("RESULT " + json.dumps(result))


def spawn(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--pairs", str(args.pairs),
           "--workers", str(args.workers), "--data-dir", str(args.data_dir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also time the Ray Data path")
    parser.add_argument("--child", choices=["naive", "engine", "ray"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("LR_RECSYS_DATA_DIR", "data"))
    )
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    naive = spawn("naive", args)
    engine = spawn("engine", args)
    ray = spawn("ray", args) if args.ray else None
    n = args.pairs
    print(
        f"{n} real ml-100k pairs -> {naive['profiles']} item profiles + {2 * n} explanations; "
        f"Gemma 3 270M Q4_K_M via llama.cpp; {os.cpu_count()} CPUs\n"
    )
    print(f"{'run':<36}{'seconds':>9}{'pairs/s':>10}{'prompt t/s':>12}{'gen t/s':>10}")

    def row(name: str, r: dict) -> None:
        s = r["seconds"]
        print(
            f"{name:<36}{s:>9.2f}{n / s:>10.2f}{r['prompt_tokens'] / s:>12.0f}"
            f"{r['completion_tokens'] / s:>10.1f}"
        )

    row("(a) naive loop (cache reset)", naive)
    row("(b) engine, cold cache", engine["cold"])
    row("(c) engine, warm cache", engine["warm"])
    if ray:
        row(f"(d) engine on Ray, {args.workers} actors, cold", ray["cold"])
    hist_items = n * 6
    per_pair = naive["seconds"] + (hist_items - naive["profiles"]) * naive["per_profile_s"]
    print(f"{'naive, profiles per pair (est.)':<36}{per_pair:>9.2f}{n / per_pair:>10.2f}")
    cold, warm = engine["cold"]["seconds"], engine["warm"]["seconds"]
    print(
        f"\nengine vs naive: {naive['seconds'] / cold:.2f}x (goal >= 2x); "
        f"vs naive re-profiling per pair: {per_pair / cold:.2f}x"
    )
    if ray:
        print(f"Ray path vs naive: {naive['seconds'] / ray['cold']['seconds']:.2f}x")
    print(f"warm vs cold: {cold / warm:.0f}x faster (goal >= 100x)")
    print("prompt t/s counts every prompt token, evaluated or reused from the KV cache;")
    print("engine times include loading the model (and for (d) starting Ray and its actors)")


if __name__ == "__main__":
    main()
