"""Answer normalisation: one sentence, required prefix, at most 50 words, flags."""

from __future__ import annotations

from lr_recsys.explain.normalize import (
    EMPTY,
    OFF_FORMAT,
    TRUNCATED,
    normalize,
    parse_rating,
)

PREFIX = "The consumer watched this movie because the consumer"


def test_keeps_first_sentence_with_prefix():
    n = normalize(" likes crime dramas. Also they like snow.\nMore text", PREFIX)
    assert n.text == f"{PREFIX} likes crime dramas."
    assert n.ok and n.flags == []


def test_first_line_only():
    n = normalize(" enjoys dark comedies and quirky characters\nThe consumer did not", PREFIX)
    assert n.text == f"{PREFIX} enjoys dark comedies and quirky characters."
    assert n.flags == [] and n.ok


def test_repeated_prefix_is_removed():
    n = normalize(f"{PREFIX} loves westerns.", PREFIX)
    assert n.text == f"{PREFIX} loves westerns."


def test_empty_and_off_format_answers_are_flagged():
    assert normalize("", PREFIX).flags[0] == EMPTY
    assert not normalize("  ...  ", PREFIX).ok
    short = normalize(" likes.", PREFIX)
    assert OFF_FORMAT in short.flags and not short.ok


def test_word_cap_of_fifty_includes_the_prefix():
    n = normalize(" " + " ".join(["word"] * 80) + ".", PREFIX)
    assert len(n.text.split()) == 50
    assert TRUNCATED in n.flags and n.text.endswith(".")


def test_markup_is_removed():
    n = normalize(" likes <item>Fargo</item> a lot.", PREFIX)
    assert "<item>" not in n.text and "Fargo" in n.text


def test_parse_rating():
    assert parse_rating(" 4") == 4.0
    assert parse_rating(" 4.5 stars") == 4.5
    assert parse_rating(" 7 out of 10, so 3") == 3.0
    assert parse_rating(" great movie") is None
