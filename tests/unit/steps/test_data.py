"""The ingest step's data settings from pipeline parameters: config file < env < parameters."""

from __future__ import annotations

from pathlib import Path

from lr_recsys.config import DataConfig
from lr_recsys.steps import ingest_config

PIPELINE_DEFAULTS = {"max_users": 20, "max_per_user": 10}  # as lr_recsys_pipeline declares them


def test_defaults_are_ml100k_with_the_pipelines_sample():
    cfg = ingest_config(**PIPELINE_DEFAULTS, environ={})
    assert cfg == DataConfig(max_users=20, max_per_user=10)


def test_interactions_path_selects_generic_and_gs_uris_read_the_mount():
    cfg = ingest_config(
        interactions_path="gs://shop/ratings.csv", items_path="gs://shop/items.csv",
        users_path="/local/users.csv", rating_min=0.5, on_duplicate="keep_last", environ={},
    )  # fmt: skip
    assert cfg.dataset == "generic"
    assert cfg.interactions == Path("/gcs/shop/ratings.csv")
    assert cfg.items == Path("/gcs/shop/items.csv") and cfg.users == Path("/local/users.csv")
    assert (cfg.rating_min, cfg.rating_max, cfg.on_duplicate) == (0.5, 5.0, "keep_last")


def test_bigquery_table_wins_over_interactions_path():
    cfg = ingest_config(
        bigquery_table="my-project-1.shop.ratings", interactions_path="x.csv", items_path="i.csv",
        environ={},
    )  # fmt: skip
    assert cfg.dataset == "bigquery" and cfg.bigquery.table_ref == "my-project-1.shop.ratings"


def test_config_file_gives_defaults_env_and_parameters_override(tmp_path):
    path = tmp_path / "data.toml"
    path.write_text(
        '[data]\ndataset = "generic"\ninteractions = "/exports/r.csv"\nitems = "/exports/i.csv"\n'
        'rating_min = 0.5\nrating_max = 10.0\nhigh_rating = 8.0\non_duplicate = "mean"\n'
        "max_users = 7\n"
        '[data.bigquery]\nproject = "my-project-1"\ndataset = "d"\ntable = "t"\n'
        'rating_column = "stars"\n'
    )
    env = {"LR_RECSYS__DATA__HIGH_RATING": "6", "LR_RECSYS__DATA__RATING_MAX": "9"}
    cfg = ingest_config(str(path), rating_max=10.0, max_users=0, environ=env)
    assert (cfg.dataset, cfg.interactions) == ("generic", Path("/exports/r.csv"))
    assert cfg.rating_min == 0.5  # a parameter at DataConfig's default keeps the file's value
    assert cfg.high_rating == 6.0  # env beats file
    assert cfg.rating_max == 10.0  # parameter beats env
    assert (cfg.on_duplicate, cfg.max_users) == ("mean", 7)  # 0 = not set
    table = ingest_config(str(path), bigquery_table="my-project-1.shop.ratings", environ={})
    assert table.bigquery.table_ref == "my-project-1.shop.ratings"
    assert table.bigquery.rating_column == "stars"  # the file's column mapping is kept
