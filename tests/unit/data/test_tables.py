"""The generic loader: every bad input fails with a ``DataError`` naming file, rows and problem.

File rows are 1-based with the header as row 1, so the first data row is row 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import DataError, load_generic, load_tables
from lr_recsys.data.tables import read_table, validate_interactions, validate_items, validate_users


def interactions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "item_id": ["i1", "i2", "i1", "i3", "i2"],
            "rating": ["5", "1", "3", "4.5", "2"],
            "timestamp": ["100", "200", "150", "160", "300"],
        }
    )


def items_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["Alien (1979)", "Heat (1995)", "Fargo (1996)"],
            "categories": ["Horror|Sci-Fi", "Crime", ""],
        }
    )


def users_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "age": ["24", "53", "23"],
            "gender": ["M", "F", "M"],
            "occupation": ["technician", "other", "writer"],
        }
    )


def load_error(
    tmp_csv,
    inter: pd.DataFrame | str | bytes | None = None,
    items: pd.DataFrame | str | bytes | None = None,
    users: pd.DataFrame | str | bytes | None = None,
    names: tuple[str, str, str] = ("inter.csv", "items.csv", "users.csv"),
) -> tuple[str, dict[str, Path]]:
    """Write the (partly bad) files, run ``load_generic`` and return the error message."""
    paths = {
        "interactions": tmp_csv(names[0], interactions_frame() if inter is None else inter),
        "items": tmp_csv(names[1], items_frame() if items is None else items),
        "users": tmp_csv(names[2], users_frame() if users is None else users),
    }
    with pytest.raises(DataError) as exc:
        load_generic(paths["interactions"], paths["items"], paths["users"])
    return str(exc.value), paths


# --- structure ----------------------------------------------------------------------------------
@pytest.mark.parametrize("column", schema.INTERACTION_COLUMNS)
def test_interactions_missing_column(tmp_csv, column):
    msg, paths = load_error(tmp_csv, inter=interactions_frame().drop(columns=[column]))
    assert f"interactions file {paths['interactions']}" in msg
    assert f"missing column(s) ['{column}']" in msg
    assert "expected at least ['user_id', 'item_id', 'rating', 'timestamp']" in msg


@pytest.mark.parametrize("column", schema.ITEM_REQUIRED_COLUMNS)
def test_items_missing_column(tmp_csv, column):
    msg, paths = load_error(tmp_csv, items=items_frame().drop(columns=[column]))
    assert f"items file {paths['items']}" in msg
    assert f"missing column(s) ['{column}']" in msg


def test_users_missing_user_id(tmp_csv):
    msg, paths = load_error(tmp_csv, users=users_frame().drop(columns=["user_id"]))
    assert f"users file {paths['users']}" in msg
    assert "missing column(s) ['user_id']" in msg


@pytest.mark.parametrize("which", ["interactions", "items", "users"])
def test_empty_file(tmp_csv, which):
    kwarg = {"interactions": "inter", "items": "items", "users": "users"}[which]
    msg, paths = load_error(tmp_csv, **{kwarg: b""})
    assert msg == f"{which} file {paths[which]} is empty"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_header_only_file(tmp_csv, suffix):
    path = tmp_csv(f"inter{suffix}", interactions_frame().iloc[:0])
    with pytest.raises(DataError) as exc:
        read_table(path, "interactions")
    assert str(exc.value) == f"interactions file {path} has a header but no rows"


@pytest.mark.parametrize("suffix", [".json", ".xlsx", ""])
def test_unsupported_extension(tmp_csv, suffix):
    path = tmp_csv(f"inter{suffix}", interactions_frame())
    with pytest.raises(DataError) as exc:
        read_table(path, "interactions")
    msg = str(exc.value)
    assert f"interactions file {path}: unsupported extension {suffix!r}" in msg
    assert ".csv, .tsv or .parquet" in msg


def test_nonexistent_file(tmp_path, tmp_csv):
    missing = tmp_path / "nope" / "items.csv"
    with pytest.raises(DataError) as exc:
        load_generic(tmp_csv("inter.csv", interactions_frame()), missing)
    assert str(exc.value) == f"items file {missing} does not exist"


def test_ragged_csv_cannot_be_parsed(tmp_csv):
    path = tmp_csv("inter.csv", "user_id,item_id,rating,timestamp\nu1,i1,5,100\nu1,i2,4,200,9\n")
    with pytest.raises(DataError) as exc:
        read_table(path, "interactions")
    assert f"interactions file {path} cannot be parsed" in str(exc.value)


def test_corrupt_parquet_cannot_be_parsed(tmp_csv):
    path = tmp_csv("inter.parquet", b"this is not a parquet file")
    with pytest.raises(DataError) as exc:
        read_table(path, "interactions")
    assert f"interactions file {path} cannot be parsed" in str(exc.value)


# --- values -------------------------------------------------------------------------------------
def test_non_numeric_rating(tmp_csv):
    inter = interactions_frame()
    inter.loc[1, "rating"] = "five"
    inter.loc[3, "rating"] = ""  # empty cell
    msg, paths = load_error(tmp_csv, inter=inter)
    assert f"interactions file {paths['interactions']}: non-numeric rating" in msg
    assert "2 row(s): row 3 ('five'), row 5 (nan)" in msg


@pytest.mark.parametrize(("bad", "shown"), [("0", "0.0"), ("6", "6.0"), ("5.5", "5.5")])
def test_rating_out_of_range(tmp_csv, bad, shown):
    inter = interactions_frame()
    inter.loc[4, "rating"] = bad
    msg, paths = load_error(tmp_csv, inter=inter)
    assert f"interactions file {paths['interactions']}: rating outside [1.0, 5.0]" in msg
    assert f"1 row(s): row 6 ({shown})" in msg


def test_rating_range_is_configurable(tmp_csv):
    inter = interactions_frame()
    inter.loc[0, "rating"] = "10"
    path = tmp_csv("inter.csv", inter)
    out = validate_interactions(read_table(path, "interactions"), path, 0.0, 10.0)
    assert out[schema.RATING].tolist() == [10.0, 1.0, 3.0, 4.5, 2.0]
    with pytest.raises(DataError, match=r"rating outside \[1.0, 5.0\] in 1 row\(s\): row 2 "):
        validate_interactions(read_table(path, "interactions"), path, 1.0, 5.0)


def test_many_bad_rows_are_summarised(tmp_csv):
    inter = pd.concat([interactions_frame()] * 2, ignore_index=True)
    inter["timestamp"] = [str(t) for t in range(len(inter))]
    inter["rating"] = ["x"] * 7 + ["3"] * (len(inter) - 7)
    msg, _ = load_error(tmp_csv, inter=inter)
    assert "7 row(s): row 2 ('x'), row 3 ('x'), row 4 ('x'), row 5 ('x'), row 6 ('x')" in msg
    assert msg.endswith(" and 2 more")


def test_unparsable_timestamps(tmp_csv):
    inter = interactions_frame()
    inter.loc[0, "timestamp"] = "yesterday"
    inter.loc[2, "timestamp"] = "2020-13-45"
    msg, paths = load_error(tmp_csv, inter=inter)
    assert f"interactions file {paths['interactions']}: unparsable timestamp" in msg
    assert "2 row(s): row 2 ('yesterday'), row 4 ('2020-13-45')" in msg
    assert "expected unix seconds or ISO-8601" in msg


def test_empty_ids(tmp_csv):
    inter = interactions_frame()
    inter.loc[2, "user_id"] = ""
    msg, paths = load_error(tmp_csv, inter=inter)
    assert f"interactions file {paths['interactions']}: empty user_id in 1 row(s): row 4" in msg


def test_duplicate_interaction_keys(tmp_csv):
    inter = interactions_frame()
    inter.loc[3] = ["u1", "i1", "4", "100"]  # same (user, item, timestamp) as data row 0
    msg, paths = load_error(tmp_csv, inter=inter)
    assert (
        f"interactions file {paths['interactions']}: duplicate (user_id, item_id, timestamp)" in msg
    )
    assert "2 row(s): row 2 ('u1/i1/100'), row 5 ('u1/i1/100')" in msg


def test_duplicate_key_detected_across_timestamp_formats(tmp_csv):
    inter = interactions_frame()
    inter.loc[3] = ["u1", "i1", "4", "1970-01-01T00:01:40Z"]  # = 100 unix seconds, like row 2
    msg, _ = load_error(tmp_csv, inter=inter)
    assert "duplicate (user_id, item_id, timestamp) key in 2 row(s): row 2 " in msg


def test_same_item_at_different_times_is_allowed(tmp_csv):
    inter = interactions_frame()
    inter.loc[3] = ["u1", "i1", "4", "101"]
    tables = load_generic(tmp_csv("inter.csv", inter), tmp_csv("items.csv", items_frame()))
    assert len(tables.interactions) == 5


@pytest.mark.parametrize("title", ["", "   "])
def test_item_without_title_description_or_categories(tmp_csv, title):
    items = items_frame().assign(description=["", " ", "A farmer's wife."])
    items.loc[1, ["title", "categories"]] = [title, " | "]  # empty parts are no categories
    msg, paths = load_error(tmp_csv, items=items)
    assert (
        f"items file {paths['items']}: item without text (no title, description or categories) "
        "in 1 row(s): row 3 ('i2')"
    ) in msg


def untitled_items(tmp_csv, description: str, categories: str) -> pd.DataFrame:
    """Load the standard files with item i2 untitled; returns the canonical items table."""
    items = items_frame().assign(description=["", description, ""])
    items.loc[1, ["title", "categories"]] = ["", categories]
    path = tmp_csv("items.csv", items)
    return load_generic(tmp_csv("inter.csv", interactions_frame()), path).items.set_index("item_id")


def test_untitled_item_is_named_by_its_description(tmp_csv):
    items = untitled_items(tmp_csv, "A bank heist in Los Angeles.", "Crime|Thriller")
    assert items.loc["i2", "title"] == "A bank heist in Los Angeles."
    assert items.loc["i1", "title"] == "Alien (1979)"  # titled items keep their title


def test_untitled_item_without_description_is_named_by_its_categories(tmp_csv):
    items = untitled_items(tmp_csv, "", "Electronics| Headphones|")
    assert items.loc["i2", "title"] == "Electronics, Headphones"
    assert items.loc["i2", "categories"] == "Electronics| Headphones|"  # the raw value is kept


def test_fallback_text_is_what_the_llm_reads(tmp_csv):
    """``item_text`` (the LLM's and the encoders' input) says the fallback once, not twice."""
    from lr_recsys.data.prepare import item_text

    described = untitled_items(tmp_csv, "A bank heist.", "Crime|Thriller")
    assert item_text(described).loc["i2"] == "A bank heist. | Crime, Thriller"
    categorised = untitled_items(tmp_csv, "", "Electronics|Headphones")
    assert item_text(categorised).loc["i2"] == "Electronics, Headphones"
    assert item_text(categorised).loc["i1"] == "Alien (1979) | Horror, Sci-Fi"


# --- duplicate (user, item, timestamp) keys: data.on_duplicate ---------------------------------
def duplicated_interactions() -> pd.DataFrame:
    """u1 rates i1 at t=100 three times (file rows 2, 7, 8: ratings 5, 2, 3.5)."""
    inter = interactions_frame()
    inter.loc[5] = ["u1", "i1", "2", "100"]
    inter.loc[6] = ["u1", "i1", "3.5", "100"]
    return inter


def test_duplicate_keys_are_an_error_naming_the_option(tmp_csv):
    path = tmp_csv("inter.csv", duplicated_interactions())
    with pytest.raises(DataError) as exc:
        load_generic(path, tmp_csv("items.csv", items_frame()), on_duplicate="error")
    msg = str(exc.value)
    assert (
        f"interactions file {path}: duplicate (user_id, item_id, timestamp) key in 3 row(s)" in msg
    )
    assert "row 2 ('u1/i1/100'), row 7 ('u1/i1/100'), row 8 ('u1/i1/100')" in msg
    assert "set data.on_duplicate = keep_last or mean (CLI --on-duplicate)" in msg


@pytest.mark.parametrize(("mode", "rating"), [("keep_last", 3.5), ("mean", (5 + 2 + 3.5) / 3)])
def test_duplicate_keys_merged_into_one_row(tmp_csv, caplog, mode, rating):
    path = tmp_csv("inter.csv", duplicated_interactions())
    with caplog.at_level(logging.WARNING, logger="lr_recsys.data.tables"):
        tables = load_generic(path, tmp_csv("items.csv", items_frame()), on_duplicate=mode)
    inter = tables.interactions
    assert len(inter) == 5  # 7 rows, 3 of them one key
    one = inter[(inter["user_id"] == "u1") & (inter["item_id"] == "i1")]
    assert len(one) == 1 and one["rating"].iloc[0] == pytest.approx(rating)
    other = inter[(inter["user_id"] == "u2") & (inter["item_id"] == "i3")]
    assert other["rating"].tolist() == [4.5]  # rows without a duplicate are untouched
    assert "merged 3 row(s) sharing 1 (user_id, item_id, timestamp) key(s)" in caplog.text
    assert f"on_duplicate={mode}" in caplog.text


def test_on_duplicate_reaches_the_loader_through_data_config(tmp_csv):
    cfg = DataConfig(
        dataset="generic", interactions=tmp_csv("inter.csv", duplicated_interactions()),
        items=tmp_csv("items.csv", items_frame()), on_duplicate="mean",
    )  # fmt: skip
    assert len(load_tables(cfg).interactions) == 5
    with pytest.raises(DataError, match="on_duplicate"):
        load_tables(cfg.model_copy(update={"on_duplicate": "error"}))


def test_unknown_on_duplicate_is_named():
    with pytest.raises(ValueError, match=r"one of \['error', 'keep_last', 'mean'\], got 'first'"):
        validate_interactions(interactions_frame(), "mem", 1.0, 5.0, on_duplicate="first")
    with pytest.raises(ValueError, match="on_duplicate"):
        DataConfig(on_duplicate="first")


def test_duplicate_item_id(tmp_csv):
    items = pd.concat([items_frame(), items_frame().iloc[[0]]], ignore_index=True)
    msg, paths = load_error(tmp_csv, items=items)
    assert f"items file {paths['items']}: duplicate item_id in 2 row(s): row 2 ('i1'), row 5" in msg


def test_duplicate_user_id(tmp_csv):
    users = pd.concat([users_frame(), users_frame().iloc[[2]]], ignore_index=True)
    msg, paths = load_error(tmp_csv, users=users)
    assert f"users file {paths['users']}: duplicate user_id in 2 row(s): row 4 ('u3')" in msg


def test_interacted_items_missing_from_items_table(tmp_csv):
    inter = interactions_frame()
    inter.loc[1, "item_id"] = "i9"
    inter.loc[4, "item_id"] = "i7"
    msg, paths = load_error(tmp_csv, inter=inter)
    assert f"items file {paths['items']}: 2 interacted item(s) have no row (no text): i7, i9" in msg


def test_missing_item_error_names_interaction_rows(tmp_csv):
    inter = interactions_frame()
    inter.loc[1, "item_id"] = "i9"
    msg, paths = load_error(tmp_csv, inter=inter)
    assert str(paths["interactions"]) in msg
    assert "row 3" in msg


def test_row_numbers_count_blank_lines(tmp_csv):
    text = "user_id,item_id,rating,timestamp\nu1,i1,5,100\n\nu1,i2,x,200\n"
    msg, _ = load_error(tmp_csv, inter=text)
    assert "row 4 ('x')" in msg


# --- happy paths --------------------------------------------------------------------------------
def test_csv_happy_path(tmp_csv):
    tables = load_generic(
        tmp_csv("inter.csv", interactions_frame()), tmp_csv("i.csv", items_frame())
    )
    inter = tables.interactions
    assert list(inter.columns) == list(schema.INTERACTION_COLUMNS)
    assert inter[schema.USER_ID].tolist() == ["u1", "u1", "u2", "u2", "u3"]
    assert inter[schema.RATING].dtype == "float32"
    assert inter[schema.RATING].tolist() == [5.0, 1.0, 3.0, 4.5, 2.0]
    assert inter[schema.TIMESTAMP].dtype == "int64"
    assert inter[schema.TIMESTAMP].tolist() == [100, 200, 150, 160, 300]
    assert tables.items[schema.TITLE].tolist() == ["Alien (1979)", "Heat (1995)", "Fargo (1996)"]
    assert tables.items[schema.CATEGORIES].tolist() == ["Horror|Sci-Fi", "Crime", ""]
    assert tables.items[schema.DESCRIPTION].tolist() == ["", "", ""]  # optional column filled
    assert tables.users is None
    assert tables.name == "generic"


def test_tsv_happy_path(tmp_csv):
    tables = load_generic(
        tmp_csv("inter.tsv", interactions_frame()), tmp_csv("i.tsv", items_frame())
    )
    assert tables.interactions[schema.ITEM_ID].tolist() == ["i1", "i2", "i1", "i3", "i2"]


def test_parquet_happy_path_with_numeric_ids(tmp_csv):
    inter = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "item_id": [10.0, 20.0, 10.0],  # float ids that are whole numbers
            "rating": [5, 3, 4],
            "timestamp": [100, 200, 150],
        }
    )
    items = pd.DataFrame({"item_id": [10, 20], "title": ["Alien", "Heat"]})
    tables = load_generic(tmp_csv("inter.parquet", inter), tmp_csv("items.pq", items))
    assert tables.interactions[schema.USER_ID].tolist() == ["1", "1", "2"]
    assert tables.interactions[schema.ITEM_ID].tolist() == ["10", "20", "10"]
    assert tables.items[schema.ITEM_ID].tolist() == ["10", "20"]
    assert tables.interactions[schema.TIMESTAMP].tolist() == [100, 200, 150]


def test_iso8601_timestamps_become_unix_seconds(tmp_csv):
    inter = interactions_frame()
    inter["timestamp"] = [
        "1970-01-01T00:01:40Z",  # 100
        "2020-01-01T01:00:00+01:00",  # offset: 2020-01-01T00:00:00Z
        "2020-01-01",  # naive date, read as UTC midnight
        "2020-01-01T00:00:01.900Z",  # fractional seconds are floored
        "300",  # unix seconds mixed in
    ]
    tables = load_generic(tmp_csv("inter.csv", inter), tmp_csv("items.csv", items_frame()))
    assert tables.interactions[schema.TIMESTAMP].tolist() == [
        100,
        1_577_836_800,
        1_577_836_800,
        1_577_836_801,
        300,
    ]
    assert tables.interactions[schema.TIMESTAMP].dtype == "int64"


def test_parquet_datetime_column_becomes_unix_seconds(tmp_csv):
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "item_id": ["i1", "i2"],
            "rating": [5, 4],
            "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02"], utc=True),
        }
    )
    tables = load_generic(tmp_csv("inter.parquet", inter), tmp_csv("items.csv", items_frame()))
    assert tables.interactions[schema.TIMESTAMP].tolist() == [1_577_836_800, 1_577_923_200]


def test_optional_users_file(tmp_csv):
    tables = load_generic(
        tmp_csv("inter.csv", interactions_frame()),
        tmp_csv("items.csv", items_frame()),
        tmp_csv("users.csv", users_frame()),
    )
    assert tables.users is not None
    assert tables.users[schema.USER_ID].tolist() == ["u1", "u2", "u3"]
    assert tables.users["age"].tolist() == ["24", "53", "23"]
    assert list(tables.users.columns) == ["user_id", "age", "gender", "occupation"]


def test_users_without_a_row_are_logged(tmp_csv, caplog):
    caplog.set_level(logging.WARNING, logger="lr_recsys.data.tables")
    users = tmp_csv("users.csv", users_frame().iloc[:2])
    tables = load_generic(
        tmp_csv("inter.csv", interactions_frame()), tmp_csv("items.csv", items_frame()), users
    )
    assert len(tables.users) == 2
    assert f"1 user(s) have no row in {users}" in caplog.text


def test_validators_accept_in_memory_frames():
    inter = validate_interactions(interactions_frame(), "mem", 1.0, 5.0)
    items = validate_items(items_frame(), "mem")
    users = validate_users(users_frame(), "mem")
    assert (len(inter), len(items), len(users)) == (5, 3, 3)
    with pytest.raises(DataError, match=r"^items file mem: missing column\(s\) \['title'\]"):
        validate_items(items_frame().drop(columns=["title"]), "mem")


# --- dispatch -----------------------------------------------------------------------------------
def test_load_tables_generic(tmp_csv):
    cfg = DataConfig(
        dataset="generic",
        interactions=tmp_csv("inter.csv", interactions_frame()),
        items=tmp_csv("items.csv", items_frame()),
        users=tmp_csv("users.csv", users_frame()),
    )
    tables = load_tables(cfg)
    assert len(tables.interactions) == 5 and tables.users is not None


def test_load_tables_generic_needs_paths():
    with pytest.raises(DataError, match="needs data.interactions and data.items"):
        load_tables(DataConfig(dataset="generic"))


def test_load_tables_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'ml-1m'"):
        load_tables(DataConfig(dataset="ml-1m"))
