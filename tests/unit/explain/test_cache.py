"""Content-addressed generation cache: keys, durability, concurrency."""

from __future__ import annotations

import multiprocessing as mp

from lr_recsys.explain.cache import GenerationCache, Record, cache_key


def test_key_depends_on_model_decoding_and_prompt():
    base = cache_key("m", {"t": 0}, "p")
    assert base == cache_key("m", {"t": 0}, "p")
    assert (
        len(
            {
                base,
                cache_key("m2", {"t": 0}, "p"),
                cache_key("m", {"t": 1}, "p"),
                cache_key("m", {"t": 0}, "p "),
            }
        )
        == 4
    )


def test_put_get_round_trip_and_persistence(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = GenerationCache(path)
    recs = [
        Record(f"k{i}", "m", "positive", f"text {i}", ["retried"] if i else [], 10, 5, 0.1)
        for i in range(1200)
    ]
    assert cache.put_many(recs) == 1200
    cache.close()
    reopened = GenerationCache(path)
    got = reopened.get_many([f"k{i}" for i in range(1300)])  # more than SQLite's parameter limit
    assert len(got) == 1200 and len(reopened) == 1200
    assert got["k1"].flags == ["retried"] and got["k0"].text == "text 0"
    assert got["k7"].prompt_tokens == 10 and got["k7"].completion_tokens == 5


def _writer(path: str, start: int) -> None:
    cache = GenerationCache(path)
    for i in range(start, start + 50):
        cache.put_many([Record(f"k{i}", "m", "positive", "t")])
    cache.close()


def test_concurrent_processes_can_write(tmp_path):
    path = str(tmp_path / "c.sqlite")
    GenerationCache(path).close()
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, s)) for s in (0, 50)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(GenerationCache(path)) == 100
