"""The serving bundle round-trips the training feature space exactly; the API models are strict."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import prepare
from lr_recsys.features import FeatureSpace
from lr_recsys.serve.api import MAX_CANDIDATES, MAX_K, RankRequest
from lr_recsys.serve.bundle import ServingBundle


def test_bundle_round_trips_indices_titles_and_popularity(tiny_tables, tmp_path):
    prepared = prepare(tiny_tables, DataConfig())
    space = FeatureSpace.build(prepared)
    ServingBundle.from_prepared(prepared, space).save(tmp_path)
    back = ServingBundle.load(tmp_path)
    assert back.space == space  # same user/item/context indices as training
    assert (back.rating_min, back.rating_max) == (1.0, 5.0)
    counts = prepared.examples[schema.ITEM_ID].value_counts()
    assert counts[back.popularity[0]] == counts.max()  # most interactions first
    assert set(back.popularity) == set(prepared.items[schema.ITEM_ID])
    some = prepared.items.iloc[0]
    assert back.titles[some[schema.ITEM_ID]] == some[schema.TITLE]


def test_bundle_missing_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"serving\.json is missing.*re-run the pipeline"):
        ServingBundle.load(tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": ""},
        {"user_id": "1", "k": MAX_K + 1},
        {"user_id": "1", "candidate_item_ids": ["x"] * (MAX_CANDIDATES + 1)},
        {"user_id": "1", "candidate_item_ids": [1, 2]},
        {"user_id": "1", "explain": 1},
        {"user_id": "1", "unknown": True},
    ],
)
def test_rank_request_rejects(body):
    with pytest.raises(ValidationError):
        RankRequest.model_validate(body)


def test_rank_request_defaults():
    req = RankRequest.model_validate({"user_id": "7"})
    assert (req.k, req.explain, req.candidate_item_ids) == (10, True, None)
