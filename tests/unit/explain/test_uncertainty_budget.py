"""The ``uncertainty`` LLM budget: scores order the budget (most uncertain first, ties by the seeded
permutation, smaller budgets are prefixes of larger ones), a clear error without scores, and the
first pass (the no-explanation twin, a 2-member ensemble) on a small real ml-100k sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig, UncertaintyConfig
from lr_recsys.data import load_prepared
from lr_recsys.explain.budget import budget_order, select_budget
from lr_recsys.explain.config import ExplainConfig
from lr_recsys.explain.engine import ExplainStats
from lr_recsys.explain.uncertainty import budget_scores, first_pass, load_scores, save_scores
from tests.conftest import real_data_dir


def _examples(users: int, per_user: int) -> pd.DataFrame:
    rows = [{schema.USER_ID: f"u{u}", schema.ITEM_ID: f"i{(u * 7 + k) % 13}",
             schema.PAIR_KEY: f"u{u}|{k}"} for u in range(users) for k in range(per_user)]  # fmt: skip
    return pd.DataFrame(rows)


def _planted(n: int, hot: list[int], seed: int = 0) -> np.ndarray:
    """Low scores everywhere, distinct high scores on the rows ``hot`` (descending in that order)."""
    scores = np.random.default_rng(seed).uniform(0.0, 0.1, size=n)
    scores[hot] = np.linspace(2.0, 1.0, len(hot))
    return scores


def test_planted_uncertain_pairs_come_first_most_uncertain_first():
    ex = _examples(10, 6)
    hot = [41, 3, 57, 22, 9]
    order = budget_order(ex, seed=0, policy="uncertainty", scores=_planted(len(ex), hot))
    assert order[:5].tolist() == hot
    assert sorted(order.tolist()) == list(range(len(ex)))  # a permutation of every row
    chosen = select_budget(ex, 5, policy="uncertainty", scores=_planted(len(ex), hot))
    assert sorted(chosen.index) == sorted(hot)  # the original row order, the planted rows


def test_scores_by_pair_key_align_with_rows_whatever_their_order():
    ex = _examples(8, 5)
    hot = [2, 17, 33]
    keyed = pd.Series(_planted(len(ex), hot), index=ex[schema.PAIR_KEY]).sample(
        frac=1, random_state=1
    )
    assert budget_order(ex, policy="uncertainty", limit=3, scores=keyed).tolist() == hot
    # a callable computes the scores from the examples it is given
    seen = []

    def score(frame: pd.DataFrame) -> np.ndarray:
        seen.append(len(frame))
        return _planted(len(frame), hot)

    assert budget_order(ex, policy="uncertainty", limit=3, scores=score).tolist() == hot
    assert seen == [len(ex)]


def test_uncertainty_budget_is_a_prefix_of_any_larger_budget_ties_by_seed():
    ex = _examples(20, 5)
    scores = np.round(np.random.default_rng(4).uniform(0, 1, len(ex)), 1)  # many ties
    full = budget_order(ex, seed=1, policy="uncertainty", scores=scores)
    for limit in (1, 15, 40, 99):
        assert budget_order(ex, 1, "uncertainty", limit, scores).tolist() == full[:limit].tolist()
    small = select_budget(ex, 15, 1, "uncertainty", scores)
    assert set(small.index) <= set(select_budget(ex, 40, 1, "uncertainty", scores).index)
    assert (np.diff(scores[full]) <= 0).all()  # never a less uncertain pair before a more one
    # equal scores: the seeded permutation decides, so another seed orders the ties differently
    flat = np.zeros(len(ex))
    assert budget_order(ex, 1, "uncertainty", scores=flat).tolist() == full_perm(len(ex), 1)
    assert budget_order(ex, 2, "uncertainty", scores=flat).tolist() != full_perm(len(ex), 1)


def full_perm(n: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).permutation(n).tolist()


def test_uncertainty_policy_without_scores_is_a_clear_error():
    ex = _examples(5, 4)
    with pytest.raises(ValueError, match="'uncertainty' needs per-pair scores"):
        budget_order(ex, policy="uncertainty")
    with pytest.raises(ValueError, match="'uncertainty' needs per-pair scores"):
        select_budget(ex, 5, policy="uncertainty")
    assert select_budget(ex, None, policy="uncertainty").equals(ex)  # everything: no order needed
    with pytest.raises(ValueError, match="one value per row"):
        budget_order(ex, policy="uncertainty", scores=np.ones(len(ex) - 1))
    with pytest.raises(ValueError, match="not finite"):
        budget_order(ex, policy="uncertainty", scores=np.r_[np.nan, np.ones(len(ex) - 1)])
    partial = pd.Series(1.0, index=ex[schema.PAIR_KEY].iloc[1:])
    with pytest.raises(ValueError, match="1 of 20 pairs have no uncertainty score"):
        budget_order(ex, policy="uncertainty", scores=partial)


@pytest.fixture(scope="module")
def small_real():
    """A small real sample: ml-100k's first 40 users, at most 25 ratings each."""
    return load_prepared(DataConfig(data_dir=real_data_dir(), max_users=40, max_per_user=25))


def test_first_pass_on_real_data_scores_every_pair(small_real, tmp_path):
    cfg = UncertaintyConfig(seeds=[0, 1], epochs=3, patience=2, scores=tmp_path / "scores.parquet")
    scores, info = budget_scores(small_real, cfg)
    keys = small_real.examples[schema.PAIR_KEY]
    assert set(scores.index) == set(keys) and len(scores) == keys.nunique()
    values = scores.to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    assert values.max() > 0  # two differently seeded members disagree somewhere
    assert info["source"] == "first_pass" and len(info["best_epochs"]) == 2
    # the file is written, read back as is, and a second call reads it instead of training
    assert load_scores(cfg.scores).equals(scores)
    again, info2 = budget_scores(small_real, cfg)
    assert info2["source"] == str(cfg.scores) and again.equals(scores)
    chosen = select_budget(small_real.examples, 30, 0, "uncertainty", scores)
    top = scores.reindex(chosen[schema.PAIR_KEY]).min()
    rest = scores.drop(chosen[schema.PAIR_KEY]).max()
    assert top >= rest  # the budget is the 30 most uncertain real pairs


def test_first_pass_is_seeded_and_needs_an_ensemble(small_real, tmp_path):
    a = first_pass(small_real, UncertaintyConfig(seeds=[0, 1], epochs=2, patience=1)).scores
    b = first_pass(small_real, UncertaintyConfig(seeds=[0, 1], epochs=2, patience=1)).scores
    pd.testing.assert_series_equal(a, b)  # the same seeds give the same budget
    save_scores(a, tmp_path / "s.parquet")
    with pytest.raises(ValueError, match="at least 2 distinct seeds"):
        UncertaintyConfig(seeds=[3, 3])


class _StubEngine:
    """Records the pairs the explain run sends to the LLM (no model is loaded)."""

    def __init__(self) -> None:
        self.pairs: list = []
        self.runner = type("Runner", (), {"close": lambda self: None})()
        self.stats = ExplainStats()

    def explain(self, pairs):
        self.pairs = list(pairs)
        keys = [p.pair_key for p in pairs]
        return pd.DataFrame({schema.PAIR_KEY: keys, schema.POSITIVE: "p", schema.NEGATIVE: "n"})


def test_explain_run_sends_the_most_uncertain_pairs_to_the_llm(small_real, tmp_path, monkeypatch):
    from lr_recsys.explain import run

    engine = _StubEngine()
    monkeypatch.setattr(run, "build_engine", lambda cfg, prepared, cache: engine)
    keys = small_real.examples[schema.PAIR_KEY]
    hot = set(keys.iloc[[5, 50, 500]])
    planted = pd.Series(keys.isin(hot).astype(float).to_numpy(), index=keys.to_numpy())
    scores_file = save_scores(planted, tmp_path / "planted.parquet")
    cfg = ExplainConfig(
        data=small_real.config, cache_path=tmp_path / "c.sqlite", out=tmp_path / "t.parquet",
        llm_pairs=3, budget_policy="uncertainty", uncertainty=UncertaintyConfig(scores=scores_file),
        progress=False,
    )  # fmt: skip
    run.explain_dataset(cfg, small_real)
    assert {p.pair_key for p in engine.pairs} == hot
    # no scores file: a first pass runs and its scores land beside the table
    cfg = cfg.model_copy(
        update={"uncertainty": UncertaintyConfig(seeds=[0, 1], epochs=2, patience=1)}
    )
    run.explain_dataset(cfg, small_real)
    written = load_scores(run.scores_path(cfg.out))
    top = written.sort_values(ascending=False, kind="stable").iloc[:3]
    assert len(engine.pairs) == 3 and written.min() >= 0
    assert min(written[p.pair_key] for p in engine.pairs) >= top.min()
