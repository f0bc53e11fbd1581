"""Feast on the embedded profile (parquet + DuckDB offline, SQLite online): apply, materialize,
point-in-time historical retrieval and online reads, all through the schema's names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.feature_store import (
    StoreConfig,
    append_sources,
    apply_and_materialize,
    historical,
    materialize_incremental,
    online,
    read_watermark,
    training_vectors,
    write_sources,
    write_state,
)
from tests.conftest import free_port

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _vec(k: float) -> list[float]:
    return list(np.arange(8, dtype=np.float32) + k)


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    extra = {}
    if request.param == "redis":
        extra = {
            "online": "redis",
            "redis_connection": request.getfixturevalue("redis_url"),
            "project": f"p{free_port()}",
        }
    cfg = StoreConfig(repo_dir=tmp_path / "repo", **extra)
    pairs = pd.DataFrame(
        {
            schema.USER_ID: ["u1", "u1", "u2"],
            schema.ITEM_ID: ["i1", "i1", "i2"],
            schema.EVENT_TIMESTAMP: [T0, T0 + timedelta(days=2), T0],  # u1/i1 explained twice
            schema.POS_EMB: [_vec(0), _vec(10), _vec(20)],
            schema.NEG_EMB: [_vec(1), _vec(11), _vec(21)],
            schema.POSITIVE: ["old reason", "new reason", "u2 reason"],
            schema.NEGATIVE: ["old no", "new no", "u2 no"],
            schema.EXPLANATION_SOURCE: ["llm", "llm", "distilled"],
            schema.PAIR_KEY: ["u1|a|i1", "u1|b|i1", "u2|a|i2"],
        }
    )
    histories = pd.DataFrame(
        {
            schema.USER_ID: ["u1", "u2"],
            schema.EVENT_TIMESTAMP: [T0, T0],
            schema.HISTORY_IDS: [["i3", "i4"], ["i1"]],
            schema.RATED_IDS: [["i3", "i4"], ["i1", "i7"]],
        }
    )
    items = pd.DataFrame(
        {
            schema.ITEM_ID: ["i1", "i2"],
            schema.EVENT_TIMESTAMP: [T0, T0],
            schema.ITEM_TEXT: ["Heat | Crime", "Babe | Comedy"],
        }
    )
    write_sources(cfg, pairs, histories, items)
    return apply_and_materialize(cfg, T0 + timedelta(days=3), model_versions=[1, 2])


def test_versioned_feature_services_exist(store):
    names = {fs.name for fs in store.list_feature_services()}
    assert names == {schema.feature_service_name(1), schema.feature_service_name(2)}


def test_historical_retrieval_is_point_in_time_correct(store):
    rows = pd.DataFrame(
        {
            schema.USER_ID: ["u1", "u1", "u2"],
            schema.ITEM_ID: ["i1", "i1", "i2"],
            schema.EVENT_TIMESTAMP: [
                T0 + timedelta(days=1),
                T0 + timedelta(days=3),
                T0 - timedelta(days=1),
            ],
        }
    )
    out = historical(store, rows).sort_values(schema.EVENT_TIMESTAMP).reset_index(drop=True)
    # the row before any explanation existed gets nothing; later rows see only the past
    assert out.loc[0, schema.POSITIVE] is None or pd.isna(out.loc[0, schema.POSITIVE])
    assert out.loc[1, schema.POSITIVE] == "old reason"
    assert out.loc[2, schema.POSITIVE] == "new reason"
    assert list(out.loc[2, schema.POS_EMB]) == _vec(10)


def test_training_vectors_follow_each_examples_rating_time(store):
    t = lambda d: int((T0 + timedelta(days=d)).timestamp())  # noqa: E731
    examples = pd.DataFrame({
        schema.PAIR_KEY: ["a", "b", "c"], schema.USER_ID: ["u1", "u2", "u1"],
        schema.ITEM_ID: ["i1", "i2", "i1"], schema.TIMESTAMP: [t(1), t(0), t(5)],
    })  # fmt: skip
    out = training_vectors(store, examples)
    assert list(out.index) == ["a", "b", "c"]  # the examples' order, keyed by pair
    assert list(out.loc["a", schema.POS_EMB]) == _vec(0)  # the re-explanation on day 2 is future
    assert list(out.loc["b", schema.NEG_EMB]) == _vec(21)
    assert list(out.loc["c", schema.POS_EMB]) == _vec(10)
    assert out.loc["c", schema.POS_EMB].dtype == np.float32
    # the source rides along: training knows which vectors the LLM wrote and which were distilled
    assert list(out[schema.EXPLANATION_SOURCE]) == ["llm", "distilled", "llm"]


def test_training_vectors_name_pairs_without_embeddings(store):
    examples = pd.DataFrame({
        schema.PAIR_KEY: ["a", "z"], schema.USER_ID: ["u1", "u7"], schema.ITEM_ID: ["i1", "i9"],
        schema.TIMESTAMP: [int((T0 + timedelta(days=1)).timestamp())] * 2,
    })  # fmt: skip
    with pytest.raises(
        ValueError, match=r"1 of 2 training pairs .*'user_id': 'u7', 'item_id': 'i9'"
    ):
        training_vectors(store, examples)


def test_online_reads_latest_values_and_misses_are_none(store):
    out = online(
        store,
        [
            {schema.USER_ID: "u1", schema.ITEM_ID: "i1"},
            {schema.USER_ID: "u9", schema.ITEM_ID: "i2"},
        ],
    )
    assert out.loc[0, schema.POSITIVE] == "new reason"
    assert list(out.loc[0, schema.NEG_EMB]) == _vec(11)
    assert list(out.loc[0, schema.HISTORY_IDS]) == ["i3", "i4"]
    assert list(out.loc[0, schema.RATED_IDS]) == ["i3", "i4"]
    assert out.loc[1, schema.POSITIVE] is None and out.loc[1, schema.HISTORY_IDS] is None
    assert out.loc[1, schema.ITEM_TEXT] == "Babe | Comedy"  # item features still found


def test_appended_rows_reach_the_online_store_incrementally_and_history_stays(store, request):
    """A refresh appends a newer explanation and history; materialize_incremental loads exactly
    the rows after the last materialisation, while point-in-time reads of the past are unchanged."""
    cfg = StoreConfig(repo_dir=Path(store.config.repo_path), project=store.project)
    if store.config.online_store.type != "sqlite":
        cfg = cfg.model_copy(update={"online": "redis", "redis_connection": request.getfixturevalue("redis_url")})  # fmt: skip
    later = T0 + timedelta(days=5)  # after the fixture's materialisation end (T0 + 3 days)
    added = append_sources(
        cfg,
        pairs=pd.DataFrame({
            schema.USER_ID: ["u1"], schema.ITEM_ID: ["i1"], schema.EVENT_TIMESTAMP: [later],
            schema.POS_EMB: [_vec(30)], schema.NEG_EMB: [_vec(31)], schema.POSITIVE: ["refreshed"],
            schema.NEGATIVE: ["refreshed no"], schema.EXPLANATION_SOURCE: ["llm"], schema.PAIR_KEY: ["u1|c|i1"],
        }),
        histories=pd.DataFrame({
            schema.USER_ID: ["u1"], schema.EVENT_TIMESTAMP: [later],
            schema.HISTORY_IDS: [["i4", "i1"]], schema.RATED_IDS: [["i1", "i3", "i4"]],
        }),
    )  # fmt: skip
    assert added == {schema.FV_PAIR: 1, schema.FV_USER: 1}
    row = {schema.USER_ID: "u1", schema.ITEM_ID: "i1"}
    assert online(store, [row]).loc[0, schema.POSITIVE] == "new reason"  # not loaded yet
    materialize_incremental(cfg, later + timedelta(seconds=1))
    out = online(store, [row])
    assert out.loc[0, schema.POSITIVE] == "refreshed" and out.loc[0, schema.PAIR_KEY] == "u1|c|i1"
    assert list(out.loc[0, schema.HISTORY_IDS]) == ["i4", "i1"]
    # the past is unchanged for training: as of day 3 the pair still reads the day-2 explanation
    past = historical(store, pd.DataFrame({**{k: [v] for k, v in row.items()},
                                           schema.EVENT_TIMESTAMP: [T0 + timedelta(days=3)]}))  # fmt: skip
    assert past.loc[0, schema.POSITIVE] == "new reason"


def test_watermark_is_recorded_and_a_missing_one_is_named(tmp_path):
    cfg = StoreConfig(repo_dir=tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match="state.json is missing: run the training pipeline"):
        read_watermark(cfg)
    write_state(cfg, 893286638)
    assert read_watermark(cfg) == 893286638


def test_appending_before_the_sources_exist_is_refused(tmp_path):
    cfg = StoreConfig(repo_dir=tmp_path / "repo")
    with pytest.raises(ValueError, match="does not exist: run the features step first"):
        append_sources(cfg, histories=pd.DataFrame({schema.USER_ID: ["u"]}))


def test_sources_with_missing_columns_fail_clearly(tmp_path):
    cfg = StoreConfig(repo_dir=tmp_path / "repo")
    with pytest.raises(
        ValueError,
        match=r"feature source pair_explanations: missing column\(s\) \['item_id', 'pos_emb'",
    ):
        write_sources(cfg, pd.DataFrame({schema.USER_ID: ["u"]}), pd.DataFrame(), pd.DataFrame())


def test_feature_repo_module_exposes_the_template_objects():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "feature_repo" / "definitions.py"
    spec = importlib.util.spec_from_file_location("feature_repo_definitions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.pair_explanations.name == schema.FV_PAIR
    assert module.lr_recsys_v1.name == schema.feature_service_name(1)
    assert {e.name for e in (module.user, module.item)} == {schema.ENTITY_USER, schema.ENTITY_ITEM}


def test_relative_repo_dir_works_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = StoreConfig(repo_dir=Path("runs/repo"))  # relative, as in the pipeline's default
    pairs = pd.DataFrame({
        schema.USER_ID: ["u1"], schema.ITEM_ID: ["i1"], schema.EVENT_TIMESTAMP: [T0],
        schema.POS_EMB: [_vec(0)], schema.NEG_EMB: [_vec(1)], schema.POSITIVE: ["p"], schema.NEGATIVE: ["n"],
        schema.EXPLANATION_SOURCE: ["llm"], schema.PAIR_KEY: ["u1|i2|i1"],
    })  # fmt: skip
    hist = pd.DataFrame(
        {
            schema.USER_ID: ["u1"],
            schema.EVENT_TIMESTAMP: [T0],
            schema.HISTORY_IDS: [["i2"]],
            schema.RATED_IDS: [["i2"]],
        }
    )
    items = pd.DataFrame(
        {schema.ITEM_ID: ["i1"], schema.EVENT_TIMESTAMP: [T0], schema.ITEM_TEXT: ["x"]}
    )
    write_sources(cfg, pairs, hist, items)
    store = apply_and_materialize(cfg, T0 + timedelta(days=1))
    assert (
        online(store, [{schema.USER_ID: "u1", schema.ITEM_ID: "i1"}]).loc[0, schema.POSITIVE] == "p"
    )
    assert (tmp_path / "runs" / "repo" / "registry.db").exists()
