"""The explain queue is a durable, bounded set on a real SQLite file: duplicates count servings,
a full queue drops (and counts) new pairs, never queued ones; peek + remove is two-phase; the
background writer never blocks a request and flushes on close."""

from __future__ import annotations

import pytest

from lr_recsys.serve.queue import ExplainQueue, QueuedPair, QueueWriter


def _pair(n: int, user: str = "u") -> QueuedPair:
    return QueuedPair(f"k{n}", user, ("1", "2"), str(n))


def test_push_peek_remove_survive_reopening(tmp_path):
    q = ExplainQueue(tmp_path / "q.sqlite", max_size=10)
    assert q.push([_pair(1), _pair(2), _pair(1)]) == (2, 0)  # k1 twice: one row, served twice
    again = ExplainQueue(tmp_path / "q.sqlite")  # another process / a restart
    got = again.peek()
    assert [p.pair_key for p in got] == ["k1", "k2"]
    assert got[0].served == 2 and got[0].history == ("1", "2") and got[0].item_id == "1"
    assert again.peek(limit=1)[0].pair_key == "k1"
    assert again.remove(["k1"]) == 1 and [p.pair_key for p in q.peek()] == ["k2"]


def test_a_full_queue_drops_new_pairs_and_counts_them(tmp_path):
    q = ExplainQueue(tmp_path / "q.sqlite", max_size=3)
    assert q.push([_pair(i) for i in range(5)]) == (3, 2)
    assert [p.pair_key for p in q.peek()] == ["k0", "k1", "k2"]
    assert q.push([_pair(0)]) == (0, 0)  # already queued: counted as served again, not dropped
    assert q.peek()[0].served == 2


def test_bad_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="max_size must be >= 1"):
        ExplainQueue(tmp_path / "q.sqlite", max_size=0)


def test_writer_flushes_in_the_background_and_on_close(tmp_path):
    q = ExplainQueue(tmp_path / "q.sqlite", max_size=100)
    w = QueueWriter(q, buffer=100, interval_s=0.05)
    for i in range(20):
        w.offer([_pair(i)])
    w.offer([])
    w.close()
    assert len(q) == 20 and w.added == 20 and w.dropped == 0


def test_writer_drops_when_its_buffer_is_full_instead_of_blocking(tmp_path):
    import sqlite3
    import time

    q = ExplainQueue(tmp_path / "q.sqlite", max_size=100)
    lock = sqlite3.connect(tmp_path / "q.sqlite")
    lock.execute("BEGIN EXCLUSIVE")  # the disk stalls: the writer's push waits on the lock
    w = QueueWriter(q, buffer=1, interval_s=0.05)
    w.offer([_pair(0)])  # taken by the writer thread, which then blocks in push
    deadline = time.monotonic() + 5
    while not w._q.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    w.offer([_pair(1)])  # fills the one-batch buffer
    started = time.monotonic()
    w.offer([_pair(2), _pair(3)])  # no room: dropped at once, the request never waits
    assert time.monotonic() - started < 0.1 and w.dropped == 2
    lock.rollback()
    lock.close()
    w.close()
    assert {p.pair_key for p in q.peek()} == {"k0", "k1"}
