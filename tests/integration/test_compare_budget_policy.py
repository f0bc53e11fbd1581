"""`lr-recsys compare --llm-pairs N --budget-policy uncertainty`: the table is cut to the N pairs
the scores rank most uncertain, and the results record the policy."""

from __future__ import annotations

import json

import pandas as pd

from lr_recsys import schema
from lr_recsys.cli import main
from lr_recsys.config import DataConfig
from lr_recsys.data import prepare
from lr_recsys.explain import save_explanations
from lr_recsys.explain.uncertainty import save_scores
from tests.synthetic import planted_explanations, planted_tables


def test_uncertainty_budget_keeps_only_the_planted_pairs_llm_explanations(tmp_path):
    tables = planted_tables(n_users=20, n_items=30, per_user=15)
    inter, items, users = tmp_path / "inter.csv", tmp_path / "items.parquet", tmp_path / "users.csv"
    tables.interactions.to_csv(inter, index=False)
    tables.items.to_parquet(items, index=False)
    tables.users.to_csv(users, index=False)
    examples = prepare(tables, DataConfig(dataset="generic")).examples
    expl = tmp_path / "explanations.parquet"
    save_explanations(planted_explanations(examples), expl)
    # plant the uncertainty on 24 training pairs: an `even` budget would reach every split
    train_keys = examples.loc[examples[schema.SPLIT] == schema.SPLIT_TRAIN, schema.PAIR_KEY]
    hot = set(train_keys.sample(24, random_state=0))
    keys = examples[schema.PAIR_KEY]
    scores = save_scores(
        pd.Series(keys.isin(hot).astype(float).to_numpy(), index=keys.to_numpy()),
        tmp_path / "scores.parquet",
    )
    runs = {}
    for policy in ("uncertainty", "even"):
        out = tmp_path / policy / "results.json"
        code = main(
            ["compare", "--dataset", "generic", "--interactions", str(inter), "--items", str(items),
             "--users", str(users), "--explanations", str(expl),
             "--models", "lr-recsys", "--tasks", "regression", "--seeds", "1", "--epochs", "1",
             "--ae-epochs", "1", "--llm-pairs", "24", "--budget-policy", policy,
             "--budget-scores", str(scores), "--out", str(out), "--no-progress"]
        )  # fmt: skip
        assert code == 0
        runs[policy] = json.loads(out.with_suffix(".meta.json").read_text())
    meta = runs["uncertainty"]
    assert meta["budget_policy"] == "uncertainty" and meta["llm_budget"] == 24
    assert meta["uncertainty"]["scores"] == str(scores)
    assert meta["llm_pairs"] == {schema.SPLIT_TRAIN: 24, schema.SPLIT_VAL: 0, schema.SPLIT_TEST: 0}
    even = runs["even"]
    assert even["budget_policy"] == "even" and even["uncertainty"] is None
    assert sum(even["llm_pairs"].values()) == 24 and even["llm_pairs"][schema.SPLIT_TEST] > 0
