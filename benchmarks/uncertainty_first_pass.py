"""The ``uncertainty`` budget's first pass on a dataset: its cost, whether it is reproducible (the
same seeds give the same scores as a saved file), where its most uncertain pairs fall (splits,
users) and, on the validation split only, whether its uncertainty flags the pairs the twin gets
wrong (Spearman of the ensemble's std with its absolute error; RMSE of the most uncertain decile
against the rest). The test split is not read.

    python benchmarks/uncertainty_first_pass.py --tuned-config configs/tuned/ml-100k.toml \
        [--compare-to benchmarks/data/ml100k_uncertainty_scores.parquet]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from lr_recsys import schema
from lr_recsys.config import DataConfig, UncertaintyConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.budget import select_budget
from lr_recsys.explain.uncertainty import first_pass, load_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--tuned-config", type=Path)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--compare-to", type=Path, help="a saved scores file (reproducibility)")
    parser.add_argument("--budgets", default="250,500,1000")
    args = parser.parse_args()
    prepared = load_prepared(DataConfig(dataset=args.dataset))
    seeds = [int(s) for s in args.seeds.split(",")]
    fp = first_pass(prepared, UncertaintyConfig(seeds=seeds), args.tuned_config)
    report: dict[str, object] = {"first_pass": fp.summary()}
    if args.compare_to:
        saved = load_scores(args.compare_to).reindex(fp.scores.index)
        report["max_abs_diff_vs_saved"] = float(np.abs(saved - fp.scores).max())
    ex = prepared.examples
    for n in (int(b) for b in args.budgets.split(",")):
        top = select_budget(ex, n, 0, "uncertainty", fp.scores)
        users = top[schema.USER_ID].value_counts()
        report[f"top_{n}"] = {"splits": top[schema.SPLIT].value_counts().to_dict(),
                              "users": int(len(users)), "largest_user_share": float(users.iloc[0] / n),
                              "items": int(top[schema.ITEM_ID].nunique())}  # fmt: skip
    val = prepared.split(schema.SPLIT_VAL)
    std = fp.scores.reindex(val[schema.PAIR_KEY]).to_numpy()
    err = np.abs(fp.mean.reindex(val[schema.PAIR_KEY]).to_numpy() - val[schema.TARGET].to_numpy())
    hot = std >= np.quantile(std, 0.9)
    report["validation"] = {
        "spearman_std_abs_error": float(spearmanr(std, err).statistic),
        "rmse_top_decile": float(np.sqrt(np.mean(err[hot] ** 2))),
        "rmse_rest": float(np.sqrt(np.mean(err[~hot] ** 2))),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
