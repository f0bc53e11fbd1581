"""The LLM budget: which pairs the LLM explains when it cannot explain them all.

Policy ``even`` (the default): every user gets one pair before any user gets a second, and each
user's pick is the pair whose item the budget has explained least so far (ties broken by a seeded
random permutation), so users and items are covered as evenly as the data allows. The order does not depend on the budget, so a budget of 1,000 pairs is
exactly the first 1,000 of a 5,000-pair budget (a larger budget reuses every cached explanation of
a smaller one). Policy ``random``: a seeded uniform sample. Policy ``uncertainty``: the pairs a
first-pass model without explanations is least sure about come first (scores from
``lr_recsys.explain.uncertainty``; ties broken by the seeded permutation), so again a smaller
budget is a prefix of a larger one given the same scores. Every other pair is distilled
(``lr_recsys.distill``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from lr_recsys import schema

Policy = Literal["even", "random", "uncertainty"]
POLICIES: tuple[str, ...] = ("even", "random", "uncertainty")
SCORED_POLICIES: tuple[str, ...] = ("uncertainty",)  # policies that need per-pair scores

# per-pair scores: an array aligned with the rows, a Series indexed by pair_key, or a callable
# that computes either from the examples (e.g. a first-pass model run on demand)
Scores = np.ndarray | pd.Series | Callable[[pd.DataFrame], "np.ndarray | pd.Series"]


def _aligned_scores(examples: pd.DataFrame, scores: Scores) -> np.ndarray:
    """``scores`` as a float array aligned with the rows of ``examples``."""
    if callable(scores):
        scores = scores(examples)
    if isinstance(scores, pd.Series):
        from lr_recsys.explain.uncertainty import scores_for

        return scores_for(examples, scores)
    out = np.asarray(scores, dtype=np.float64)
    if out.shape != (len(examples),):
        raise ValueError(
            f"scores must hold one value per row ({len(examples)}), got shape {out.shape}"
        )
    if not np.isfinite(out).all():
        raise ValueError(f"{int((~np.isfinite(out)).sum())} budget scores are not finite")
    return out


def needs_scores(policy: str) -> bool:
    """Whether ``policy`` orders pairs by per-pair scores (which the caller must supply)."""
    return policy in SCORED_POLICIES


def _check_policy(policy: str, scores: Scores | None) -> None:
    if policy not in POLICIES:
        raise ValueError(f"unknown LLM budget policy {policy!r}; expected one of {POLICIES}")
    if needs_scores(policy) and scores is None:
        raise ValueError(
            f"LLM budget policy {policy!r} needs per-pair scores (e.g. "
            "lr_recsys.explain.uncertainty.budget_scores); none were given"
        )


def budget_order(
    examples: pd.DataFrame,
    seed: int = 0,
    policy: Policy = "even",
    limit: int | None = None,
    scores: Scores | None = None,
) -> np.ndarray:
    """Row positions of ``examples`` in the order the LLM budget takes them (the first
    ``limit``; all when None). The order does not depend on ``limit``.

    ``even`` is greedy in rounds: in each round every user who has pairs left, in a seeded random
    order, gets the remaining pair whose item has been explained least so far (ties: the seeded
    permutation). ``uncertainty`` sorts by ``scores``, highest first (ties: the seeded
    permutation).

    Args:
        examples: Rows with ``user_id`` and ``item_id`` (e.g. ``Prepared.examples``).
        seed: Seed of the random permutation underneath the policy.
        policy: ``even`` (users, then items, evenly), ``random`` or ``uncertainty``.
        limit: How many positions to return.
        scores: Per-pair scores, higher = explained first; required by ``uncertainty`` (see
            ``Scores``), ignored by the other policies.

    Raises:
        ValueError: an unknown policy, or ``uncertainty`` without scores.
    """
    _check_policy(policy, scores)
    n = len(examples)
    limit = n if limit is None else min(limit, n)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if policy == "random" or n == 0:
        return perm[:limit]
    if policy == "uncertainty":
        assert scores is not None
        values = _aligned_scores(examples, scores)[perm]
        return perm[np.argsort(-values, kind="stable")[:limit]]  # stable: ties keep perm order
    items = pd.factorize(examples[schema.ITEM_ID])[0][perm]  # in permutation order
    users = pd.factorize(examples[schema.USER_ID])[0][perm]
    by_user: dict[int, list[int]] = {}
    for k, u in enumerate(users):
        by_user.setdefault(int(u), []).append(k)
    user_order = rng.permutation(len(by_user))
    counts = np.zeros(items.max() + 1, dtype=np.int64)
    remaining = {u: np.array(ks) for u, ks in by_user.items()}
    out: list[int] = []
    while len(out) < limit:
        for u in user_order:
            ks = remaining.get(int(u))
            if ks is None or len(ks) == 0:
                continue
            j = int(np.argmin(counts[items[ks]]))  # first minimum: the permutation breaks ties
            k = int(ks[j])
            remaining[int(u)] = np.delete(ks, j)
            counts[items[k]] += 1
            out.append(k)
            if len(out) == limit:
                break
    return perm[np.asarray(out, dtype=np.int64)]


def select_budget(
    examples: pd.DataFrame,
    llm_pairs: int | None,
    seed: int = 0,
    policy: Policy = "even",
    scores: Scores | None = None,
) -> pd.DataFrame:
    """The ``llm_pairs`` rows the LLM explains (all rows when ``llm_pairs`` is None or at least
    ``len(examples)``), in the original row order. ``scores``: as in ``budget_order``.

    Raises:
        ValueError: a negative budget; a policy that needs scores without them.
    """
    if llm_pairs is None or llm_pairs >= len(examples):
        return examples  # every pair: no order, so no scores needed
    _check_policy(policy, scores)
    if llm_pairs < 0:
        raise ValueError(f"llm_pairs must be >= 0 (0 = explain nothing), got {llm_pairs}")
    take = np.sort(budget_order(examples, seed, policy, llm_pairs, scores))
    return examples.iloc[take]
