"""Explanation throughput: a naive llama-cpp-python loop vs the engine, on real ml-100k pairs.

(a) naive: ``llama_cpp.Llama`` with its defaults and 2 threads, one ``create_completion`` per
    prompt, KV cache reset before each, prompts in data order (no retries);
(b) engine, cold cache: the same pairs through the engine with its defaults (cache lookups,
    prefix-sharing order, batched decoding whose common prefixes are evaluated once and whose
    negative prompts copy their positive's prefix, off-format answers retried once);
(c) engine, warm cache: the same call again;
(d) with --ray: the engine on a Ray Data actor pool (one single-threaded model per core).

Both complete exactly the same prompts (the engine run checks that every naive prompt is in its
cache) with greedy decoding, so the ratio isolates the engine's mechanics. The line "raw
llama.cpp" is llama.cpp's own timing of (a) (``llama_perf_context``: time inside its decode
calls, prompt batches vs one-token steps), the reference for the engine's tokens per second.
With a profile variant, one CoT profile per distinct item comes first in both, and the line
"naive, profiles per pair" estimates a loop that re-profiles every history item for every pair.
Every run happens in its own fresh process. Goals: engine >= 2x naive; warm >= 100x faster.

    python benchmarks/explain_throughput.py [--pairs 40] [--variant attributes] [--ray]
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
from lr_recsys.explain.backends import LLMConfig, build_backend
from lr_recsys.explain.backends.llamacpp import default_model_path
from lr_recsys.explain.cache import GenerationCache, cache_key
from lr_recsys.explain.config import ExplainConfig
from lr_recsys.explain.engine import model_id_for, pairs_from_examples
from lr_recsys.explain.normalize import normalize
from lr_recsys.explain.prompts import (
    attribute_prompt,
    get_domain,
    get_variant,
    pair_prompt,
    profile_prefix,
    profile_prompt,
)
from lr_recsys.explain.run import build_engine, catalogue, decoding_for

THREADS = 2


def pick_pairs(prepared, n: int):
    """The first n test-split pairs with a full 5-item history, one per user (real data)."""
    ex = prepared.split(schema.SPLIT_TEST)
    full = ex[ex[schema.HISTORY].map(lambda h: schema.PAD_ITEM not in h)]
    return pairs_from_examples(full.groupby(schema.USER_ID, sort=False).head(1).head(n))


def kinds_of(variant) -> tuple[str, ...]:
    if variant.style in ("summary", "rating"):
        return (variant.style,)
    return ("positive", "negative") if variant.negative else ("positive",)


def pair_prompts(prepared, pairs, cfg: ExplainConfig, profiles: dict[str, str]) -> list[str]:
    """Every pair's prompts in data order, built as the engine builds them."""
    domain, variant = get_domain(cfg.domain, **cfg.domain_overrides), get_variant(cfg.variant)
    texts, attrs = catalogue(prepared.items)
    out = []
    for p in pairs:
        for kind in kinds_of(variant):
            if variant.style == "attributes":
                out.append(
                    attribute_prompt(kind, [attrs[h] for h in p.history], attrs[p.item_id], domain)
                )
            else:
                hist = [(texts[h], profiles.get(h)) for h in p.history]
                cand = (texts[p.item_id], profiles.get(p.item_id))
                out.append(pair_prompt(kind, hist, cand, domain, variant))
    return out


def profile_items(pairs) -> list[str]:
    return sorted({i for p in pairs for i in (*p.history, p.item_id)})


def run_naive(prepared, pairs, cfg: ExplainConfig) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(default_model_path()),
        n_ctx=2048,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        verbose=False,
    )
    domain, variant = get_domain(cfg.domain), get_variant(cfg.variant)
    dec = decoding_for(cfg)
    texts = dict(zip(prepared.items[schema.ITEM_ID], prepared.items[schema.ITEM_TEXT], strict=True))
    ptok = ctok = 0

    def complete(prompt: str) -> str:
        nonlocal ptok, ctok
        llm.reset()
        resp = llm.create_completion(
            prompt, max_tokens=dec.max_tokens, temperature=dec.temperature, stop=list(dec.stop)
        )
        ptok += resp["usage"]["prompt_tokens"]
        ctok += resp["usage"]["completion_tokens"]
        return resp["choices"][0]["text"]

    start = time.perf_counter()
    items = profile_items(pairs) if variant.profiles else []
    profiles = {
        i: normalize(complete(profile_prompt(texts[i], domain)), profile_prefix(domain)).text
        for i in items
    }
    profile_s = time.perf_counter() - start
    for prompt in pair_prompts(prepared, pairs, cfg, profiles):
        complete(prompt)
    seconds = time.perf_counter() - start
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    llm.close()
    return {
        "seconds": seconds,
        "prompt_tokens": ptok,
        "completion_tokens": ctok,
        "profiles": len(items),
        "per_profile_s": profile_s / len(items) if items else 0.0,
        "raw": {
            "prompt_tokens": perf.n_p_eval,
            "prompt_s": perf.t_p_eval_ms / 1000,
            "gen_tokens": perf.n_eval,
            "gen_s": perf.t_eval_ms / 1000,
        },
    }


def run_engine(prepared, pairs, cfg: ExplainConfig) -> dict:
    start = time.perf_counter()
    if cfg.executor == "local":
        build_backend(cfg.llm).close()
    out = {"load_s": time.perf_counter() - start}  # what loading the backend alone takes
    for label in ("cold", "warm"):
        cache = GenerationCache(cfg.cache_path)
        engine = build_engine(cfg, prepared, cache)
        start = time.perf_counter()
        engine.explain(pairs)
        out[label] = {
            "seconds": time.perf_counter() - start,
            "prompt_tokens": engine.stats.prompt_tokens,
            "completion_tokens": engine.stats.completion_tokens,
            "retried": engine.stats.flagged,
        }
        backend = getattr(engine.runner, "backend", None)
        decoders = getattr(backend, "batchers", [])
        if decoders:
            out[label]["evaluated_tokens"] = sum(d.stats.evaluated_tokens for d in decoders)
        if label == "cold":  # the naive loop's prompts are exactly the engine's
            profiles = engine.profiles(profile_items(pairs)) if engine.variant.profiles else {}
            keys = [
                cache_key(model_id_for(cfg.llm), decoding_for(cfg).key(), p)
                for p in pair_prompts(prepared, pairs, cfg, profiles)
            ]
            out["same_prompts"] = len(cache.get_many(keys)) == len(set(keys))
        engine.runner.close()
        cache.close()
    return out


def child(args: argparse.Namespace) -> None:
    prepared = load_prepared(DataConfig(data_dir=args.data_dir))
    pairs = pick_pairs(prepared, args.pairs)
    cache_path = Path(tempfile.mkdtemp(prefix="lr_explain_bench_")) / "cache.sqlite"
    base = {"variant": args.variant, "cache_path": cache_path, "progress": False}
    if args.child == "naive":
        result = run_naive(prepared, pairs, ExplainConfig(variant=args.variant))
    elif args.child == "engine":
        result = run_engine(prepared, pairs, ExplainConfig(**base))
    else:
        llm = LLMConfig(n_threads=1)
        cfg = ExplainConfig(**base, llm=llm, executor="ray", workers=args.workers)
        result = run_engine(prepared, pairs, cfg)
    print("RESULT " + json.dumps(result))


def spawn(kind: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--pairs", str(args.pairs),
           "--variant", args.variant, "--workers", str(args.workers),
           "--data-dir", str(args.data_dir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--variant", default=ExplainConfig().variant)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also time the Ray Data path")
    parser.add_argument("--child", choices=["naive", "engine", "ray"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("LR_RECSYS_DATA_DIR", "data"))
    )
    args = parser.parse_args()
    get_variant(args.variant)  # fail fast on a bad name
    if args.child:
        child(args)
        return
    naive = spawn("naive", args)
    engine = spawn("engine", args)
    ray = spawn("ray", args) if args.ray else None
    n, llm = args.pairs, LLMConfig()
    kinds = kinds_of(get_variant(args.variant))
    profiles = f"{naive['profiles']} item profiles + " if naive["profiles"] else ""
    print(
        f"{n} real ml-100k pairs, variant {args.variant!r} -> {profiles}{len(kinds) * n} "
        f"explanations; Gemma 3 270M Q4_K_M via llama.cpp; {os.cpu_count()} CPUs; engine: "
        f"{llm.n_threads} single-threaded lanes of up to {llm.parallel} sequences\n"
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
    raw = naive["raw"]
    raw_p, raw_g = raw["prompt_tokens"] / raw["prompt_s"], raw["gen_tokens"] / raw["gen_s"]
    print(
        f"{'raw llama.cpp (timers of (a))':<36}{raw['prompt_s'] + raw['gen_s']:>9.2f}{'':>10}"
        f"{raw_p:>12.0f}{raw_g:>10.1f}"
    )
    if naive["profiles"]:
        hist_items = n * 6
        per_pair = naive["seconds"] + (hist_items - naive["profiles"]) * naive["per_profile_s"]
        print(f"{'naive, profiles per pair (est.)':<36}{per_pair:>9.2f}{n / per_pair:>10.2f}")
    cold, warm = engine["cold"], engine["warm"]
    print(
        f"\nengine vs naive: {naive['seconds'] / cold['seconds']:.2f}x (goal >= 2x); without "
        f"the engine's model load: {naive['seconds'] / (cold['seconds'] - engine['load_s']):.2f}x"
    )
    if ray:
        print(f"Ray path vs naive: {naive['seconds'] / ray['cold']['seconds']:.2f}x")
    print(f"warm vs cold: {cold['seconds'] / warm['seconds']:.0f}x faster (goal >= 100x)")
    tokens = cold["prompt_tokens"] + cold["completion_tokens"]
    raw_tokens = raw["prompt_tokens"] + raw["gen_tokens"]
    print(
        f"engine tokens/s (prompt + generated, per wall second) vs raw llama.cpp (per second "
        f"inside its decode calls): {tokens / cold['seconds']:.0f} vs "
        f"{raw_tokens / (raw['prompt_s'] + raw['gen_s']):.0f} = "
        f"{tokens / cold['seconds'] / (raw_tokens / (raw['prompt_s'] + raw['gen_s'])):.2f}x"
    )
    if "evaluated_tokens" in cold:
        print(
            f"engine evaluated {cold['evaluated_tokens']} of its {cold['prompt_tokens']} prompt "
            f"tokens (the rest copied from shared prefixes); {cold['retried']} pairs retried"
        )
    print(f"same prompts in (a) and (b): {engine['same_prompts']}")
    print("prompt t/s counts every prompt token, evaluated or shared; engine times include")
    print(
        f"loading the model ({engine['load_s']:.1f} s on its own; (a) excludes it) and for (d) "
        "starting Ray and its actors"
    )


if __name__ == "__main__":
    main()
