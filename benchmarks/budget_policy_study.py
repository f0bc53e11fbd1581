"""Accuracy vs LLM budget for two budget policies (issue 11 item 3): ``even`` (users, then items,
evenly) against ``uncertainty`` (the pairs a first-pass twin is least sure about first).

For every policy and budget, ``lr-recsys compare`` trains LR-Recsys on the policy's table cut to
the budget (the rest distilled); the no-explanation twin reads no explanation, so it is trained
once and every LR-Recsys run is paired with it seed by seed. Prints and writes (json + md) the
test metrics, the gain over the twin and uncertainty against even per budget, each with a
two-sided paired t-test across seeds. Finished runs are kept under ``<out stem>/`` and reused, so
an interrupted study resumes where it stopped.

    python benchmarks/budget_policy_study.py benchmarks/study_ml100k_budget_policy.toml [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import tomllib
from pathlib import Path
from typing import Any

from lr_recsys.compare import paired_test, relative_improvement, run_compare, write_outputs
from lr_recsys.config import CompareConfig, load_compare_config

TWIN = "lr-recsys-noexp"
MODEL = "lr-recsys"
METRICS = {"regression": "rmse", "classification": "auc"}

log = logging.getLogger("budget_policy_study")


def _run(cfg: CompareConfig, out: Path) -> dict[str, Any]:
    """One compare run, or the one already written to ``out`` (resume)."""
    meta = out.with_suffix(".meta.json")
    if out.exists() and meta.exists():
        log.info("reusing %s", out)
        return {"results": json.loads(out.read_text()), "meta": json.loads(meta.read_text())}
    doc = run_compare(cfg.model_copy(update={"out": out}))
    write_outputs(doc, out)
    return doc


def _cell(s: dict[str, Any]) -> str:
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


def _versus(s: dict[str, Any], ref: dict[str, Any], metric: str) -> dict[str, Any]:
    p = paired_test(s["runs"], ref["runs"])
    return {"delta_pct": relative_improvement(s["mean"], ref["mean"], metric), "p": p}


def _fmt(v: dict[str, Any]) -> str:
    p = "-" if v["p"] is None else f"{v['p']:.3f}"
    return f"{v['delta_pct']:+.2f}% (p {p})"


def study(path: Path, workers: int | None, only: list[str] | None = None) -> dict[str, Any]:
    doc = tomllib.loads(path.read_text())
    plan = doc.pop("study")
    if workers:
        doc["workers"] = workers
    base = load_compare_config(None, doc)
    runs_dir = base.out.with_suffix("")
    t0 = time.perf_counter()
    twin = _run(
        base.model_copy(update={"models": [TWIN], "explanations": None, "llm_pairs": None}),
        runs_dir / "twin.json",
    )
    rows, seconds = [], {"twin": twin["meta"]["seconds"]}
    for policy, table in plan["explanations"].items():
        if only and policy not in only:
            continue
        for budget in plan["budgets"]:
            cfg = base.model_copy(update={"models": [MODEL], "explanations": Path(table),
                                          "llm_pairs": budget, "budget_policy": policy})  # fmt: skip
            run = _run(cfg, runs_dir / f"{policy}_{budget}.json")
            seconds[f"{policy}_{budget}"] = run["meta"]["seconds"]
            rows.append({"policy": policy, "budget": budget, "results": run["results"][MODEL],
                         "llm_pairs": run["meta"]["llm_pairs"],
                         "distiller": run["meta"].get("distiller", {})})  # fmt: skip
    for row in rows:
        row["vs_twin"] = {t: _versus(row["results"][t][m], twin["results"][TWIN][t][m], m)
                          for t, m in METRICS.items() if t in row["results"]}  # fmt: skip
    by = {(r["policy"], r["budget"]): r for r in rows}
    versus_even = {}
    for budget in plan["budgets"]:
        u, e = by.get(("uncertainty", budget)), by.get(("even", budget))
        if u and e:
            versus_even[str(budget)] = {
                t: _versus(u["results"][t][m], e["results"][t][m], m)
                for t, m in METRICS.items()
                if t in u["results"]
            }
    return {
        "rows": rows, "twin": twin["results"][TWIN], "bias": twin["results"].get("bias"),
        "uncertainty_vs_even": versus_even, "n_pairs": sum(twin["meta"]["examples"].values()),
        "seconds": seconds, "wall_seconds": round(time.perf_counter() - t0, 1),
        "seeds": base.seeds, "tuned_config": str(base.tuned_config),
        "uncertainty": base.uncertainty.model_dump(mode="json"),
    }  # fmt: skip


def markdown(res: dict[str, Any]) -> str:
    metrics = [(t, m) for t, m in METRICS.items() if t in res["twin"]]
    head = ["policy", "LLM pairs (share)", "LLM pairs train/val/test"]
    for _, m in metrics:
        head += [m.upper(), f"Δ {m.upper()} vs twin (p)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    n = res["n_pairs"]
    for r in res["rows"]:
        c = r["llm_pairs"]
        split = f"{c.get('train', 0)} / {c.get('val', 0)} / {c.get('test', 0)}"
        cells = [r["policy"], f"{r['budget']:,} ({r['budget'] / n:.2%})", split]
        for t, m in metrics:
            cells += [_cell(r["results"][t][m]), _fmt(r["vs_twin"][t])]
        lines.append("| " + " | ".join(cells) + " |")
    for name in ("twin", "bias"):
        if res.get(name):
            cells = [f"{TWIN} (twin)" if name == "twin" else "bias (floor)", "0", "-"]
            for t, m in metrics:
                cells += [_cell(res[name][t][m]), "-"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Uncertainty against even at the same budget (paired over seeds):", "",
              "| LLM pairs | " + " | ".join(f"Δ {m.upper()} (p)" for _, m in metrics) + " |",
              "|" + "---|" * (len(metrics) + 1)]  # fmt: skip
    for budget, v in res["uncertainty_vs_even"].items():
        lines.append(f"| {int(budget):,} | " + " | ".join(_fmt(v[t]) for t, _ in metrics) + " |")
    lines += ["", f"Seeds {res['seeds']}, tuned config {res['tuned_config']}; Δ positive = better "
              "(RMSE lower, AUC higher); p: two-sided paired t-test across seeds. Compare time "
              f"summed over the runs {sum(res['seconds'].values()) / 60:.1f} min (per run, s: "
              f"{res['seconds']}); this invocation's wall time {res['wall_seconds'] / 60:.1f} min "
              "(runs reused from an earlier invocation take none)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="study TOML (a compare config + [study])")
    parser.add_argument("--workers", type=int, help="override the config's parallel runs")
    parser.add_argument("--only", help="comma-separated policies to run now (the rest later)")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    res = study(args.config, args.workers, args.only.split(",") if args.only else None)
    out = load_compare_config(None, {k: v for k, v in tomllib.loads(args.config.read_text()).items()
                                     if k != "study"}).out  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    md = markdown(res)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
