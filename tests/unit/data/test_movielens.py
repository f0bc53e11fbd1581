"""ml-100k raw formats (RecBole atomic files, GroupLens files) and the local source; no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from lr_recsys import schema
from lr_recsys.config import DataConfig
from lr_recsys.data import DataError, load_tables
from lr_recsys.data.movielens import (
    CACHE_FILES,
    GENRES,
    fetch_raw,
    load_movielens,
    parse_grouplens,
    parse_recbole,
)
from lr_recsys.data.tables import validate_interactions, validate_items, validate_users

RECBOLE_INTER = (
    b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    b"196\t242\t3\t881250949\n"
    b"186\t302\t3\t891717742\n"
    b"196\t1\t5\t881250950\n"
)
RECBOLE_ITEM = (
    b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    b"1\tToy Story\t1995\tAnimation Children's Comedy\n"
    b'242\tKolya "Kolja"\t1996\tComedy\n'  # a quote: the files are read with QUOTE_NONE
    b"302\tunknown\t\tunknown\n"  # no release year
)
RECBOLE_USER = (
    b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    b"196\t49\tM\twriter\t55105\n"
    b"186\t39\tF\texecutive\t00000\n"
)


def grouplens_item_line(item_id: int, title: str, genres: set[str]) -> str:
    flags = "|".join("1" if g in genres else "0" for g in GENRES)
    return f"{item_id}|{title}|01-Jan-1995||http://us.imdb.com/x|{flags}\n"


GROUPLENS_DATA = b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t1\t5\t881250950\n"
GROUPLENS_ITEM = (
    grouplens_item_line(1, "Toy Story (1995)", {"Animation", "Children's", "Comedy"})
    + grouplens_item_line(242, "Kolya (1996)", {"Comedy"})
    + grouplens_item_line(302, "Misérables, Les (1995)", {"Drama", "Film-Noir"})
).encode("latin-1")
GROUPLENS_USER = b"196|49|M|writer|55105\n186|39|F|executive|00000\n"


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (directory / name).write_bytes(payload)
    return directory


@pytest.fixture
def recbole_dir(tmp_path) -> Path:
    return write_files(
        tmp_path / "recbole",
        {
            "ml-100k.inter": RECBOLE_INTER,
            "ml-100k.item": RECBOLE_ITEM,
            "ml-100k.user": RECBOLE_USER,
        },
    )


@pytest.fixture
def grouplens_dir(tmp_path) -> Path:
    return write_files(
        tmp_path / "grouplens",
        {"u.data": GROUPLENS_DATA, "u.item": GROUPLENS_ITEM, "u.user": GROUPLENS_USER},
    )


# --- parsers ------------------------------------------------------------------------------------
def test_parse_recbole():
    inter, items, users = parse_recbole(RECBOLE_INTER, RECBOLE_ITEM, RECBOLE_USER)
    assert list(inter.columns) == list(schema.INTERACTION_COLUMNS)  # ":token" suffixes stripped
    assert inter.values.tolist() == [
        ["196", "242", "3", "881250949"],
        ["186", "302", "3", "891717742"],
        ["196", "1", "5", "881250950"],
    ]
    assert items[schema.ITEM_ID].tolist() == ["1", "242", "302"]
    assert items[schema.TITLE].tolist() == ["Toy Story (1995)", 'Kolya "Kolja" (1996)', "unknown"]
    assert items[schema.CATEGORIES].tolist() == ["Animation|Children's|Comedy", "Comedy", "unknown"]
    assert list(users.columns) == ["user_id", "age", "gender", "occupation"]  # zip dropped
    assert users.values.tolist() == [["196", "49", "M", "writer"], ["186", "39", "F", "executive"]]


def test_parse_recbole_reorders_interaction_columns():
    shuffled = (
        b"timestamp:float\trating:float\tuser_id:token\titem_id:token\n881250949\t3\t196\t242\n"
    )
    inter, _, _ = parse_recbole(shuffled, RECBOLE_ITEM, RECBOLE_USER)
    assert inter.values.tolist() == [["196", "242", "3", "881250949"]]


def test_parse_grouplens():
    inter, items, users = parse_grouplens(GROUPLENS_DATA, GROUPLENS_ITEM, GROUPLENS_USER)
    assert list(inter.columns) == list(schema.INTERACTION_COLUMNS)
    assert inter.values.tolist()[0] == ["196", "242", "3", "881250949"]
    assert items[schema.ITEM_ID].tolist() == ["1", "242", "302"]
    # u.item is latin-1
    assert items[schema.TITLE].tolist() == [
        "Toy Story (1995)",
        "Kolya (1996)",
        "Misérables, Les (1995)",
    ]
    # genre flags, in GENRES order
    assert items[schema.CATEGORIES].tolist() == [
        "Animation|Children's|Comedy",
        "Comedy",
        "Drama|Film-Noir",
    ]
    assert list(users.columns) == ["user_id", "age", "gender", "occupation"]
    assert users["user_id"].tolist() == ["196", "186"]


@pytest.mark.parametrize("parse", [parse_recbole, parse_grouplens])
def test_parsed_frames_validate(parse):
    raw = (
        (RECBOLE_INTER, RECBOLE_ITEM, RECBOLE_USER)
        if parse is parse_recbole
        else (GROUPLENS_DATA, GROUPLENS_ITEM, GROUPLENS_USER)
    )
    inter, items, users = parse(*raw)
    inter = validate_interactions(inter, "mem", 1.0, 5.0)
    assert inter[schema.RATING].tolist() == [3.0, 3.0, 5.0]
    assert inter[schema.TIMESTAMP].tolist() == [881250949, 891717742, 881250950]
    assert len(validate_items(items, "mem")) == 3
    assert len(validate_users(users, "mem")) == 2


# --- local source -------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["recbole_dir", "grouplens_dir"])
def test_local_source_loads_without_touching_the_cache(request, tmp_path, layout):
    local = request.getfixturevalue(layout)
    data_dir = tmp_path / "cache"
    tables = load_movielens(data_dir, "local", local)
    assert tables.name == "ml-100k"
    assert tables.interactions[schema.ITEM_ID].tolist() == ["242", "302", "1"]
    assert tables.interactions[schema.TIMESTAMP].dtype == "int64"
    assert tables.items[schema.TITLE].iloc[0] == "Toy Story (1995)"
    assert tables.users is not None and tables.users[schema.USER_ID].tolist() == ["196", "186"]
    # a local (possibly partial) copy is read in place and never replaces the shared cache
    for name in CACHE_FILES:
        assert not (data_dir / "ml-100k" / name).exists()


def test_local_source_through_data_config(tmp_path, grouplens_dir):
    cfg = DataConfig(data_dir=tmp_path / "cache", source="local", local_dir=grouplens_dir)
    tables = load_tables(cfg)
    assert len(tables.interactions) == 3


def test_local_source_validates(tmp_path):
    bad = RECBOLE_INTER + b"196\t999\t4\t881250951\n"  # item 999 is not in ml-100k.item
    local = write_files(
        tmp_path / "bad",
        {"ml-100k.inter": bad, "ml-100k.item": RECBOLE_ITEM, "ml-100k.user": RECBOLE_USER},
    )
    with pytest.raises(DataError, match=r"ml-100k:local:.*1 interacted item\(s\) .*: 999"):
        load_movielens(tmp_path / "cache", "local", local)
    assert not (tmp_path / "cache" / "ml-100k").exists()  # nothing cached from bad data


def test_unknown_local_layout(tmp_path):
    local = write_files(tmp_path / "other", {"ratings.csv": b"userId,movieId\n1,2\n"})
    with pytest.raises(DataError) as exc:
        load_movielens(tmp_path / "cache", "local", local)
    assert str(exc.value) == (
        f"local ml-100k directory {local}: expected u.data/u.item/u.user or "
        "ml-100k.inter/.item/.user"
    )


def test_local_source_needs_a_directory():
    with pytest.raises(DataError, match="source='local' needs local_dir"):
        fetch_raw("local", None)
