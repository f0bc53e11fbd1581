"""The explain queue: served (user, history, item) pairs that went out without LLM text.

The ranking service appends every returned item whose explanation was distilled (no text was
generated for that pair); the next pipeline run (the served-text step or a refresh) drains it:
the LLM explains the pairs whose history is still the user's current one, the texts reach the
online store, and the service returns them from then on without a restart.

Durable and bounded: an SQLite file (WAL; one writer thread per service replica, readers in
other processes) holding at most ``max_size`` distinct pairs. When it is full new pairs are
dropped and counted, never the ones already queued. Draining is two-phase — ``peek`` then
``remove`` after the explanations are stored — so a failed refresh loses nothing.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS explain_queue (
    pair_key TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    history TEXT NOT NULL,      -- JSON list of item ids, oldest first (unpadded)
    item_id TEXT NOT NULL,
    enqueued_at REAL NOT NULL,
    served INTEGER NOT NULL DEFAULT 1  -- times the pair was served without text
)"""


@dataclass(frozen=True)
class QueuedPair:
    pair_key: str
    user_id: str
    history: tuple[str, ...]
    item_id: str
    served: int = 1


class ExplainQueue:
    """A bounded, durable set of pairs waiting for LLM text (SQLite)."""

    def __init__(self, path: Path | str, max_size: int = 10_000) -> None:
        if max_size < 1:
            raise ValueError(f"explain queue max_size must be >= 1, got {max_size}")
        self.path, self.max_size = Path(path), max_size
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()  # one connection per thread (sqlite3's rule)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # explicit BEGINs
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def push(self, pairs: list[QueuedPair]) -> tuple[int, int]:
        """Queue ``pairs``; a pair already queued counts one more serving. Returns (added,
        dropped because the queue was full)."""
        served: dict[str, int] = {}
        first: dict[str, QueuedPair] = {}
        for p in pairs:  # one statement per distinct pair, however often it was served
            served[p.pair_key] = served.get(p.pair_key, 0) + p.served
            first.setdefault(p.pair_key, p)
        if not served:
            return 0, 0
        now = time.time()
        con = self._connect()
        con.execute("BEGIN IMMEDIATE")  # the write lock first (waits up to the timeout): no
        try:  # read-then-upgrade, which SQLite refuses at once when another writer holds it
            keys = list(served)
            known: set[str] = set()
            for s in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                chunk = keys[s : s + 500]
                marks = ",".join("?" * len(chunk))
                known.update(k for (k,) in con.execute(
                    f"SELECT pair_key FROM explain_queue WHERE pair_key IN ({marks})", chunk))  # noqa: S608  # fmt: skip
            con.executemany("UPDATE explain_queue SET served = served + ? WHERE pair_key = ?",
                            [(served[k], k) for k in known])  # fmt: skip
            new = [k for k in keys if k not in known]
            size = con.execute("SELECT COUNT(*) FROM explain_queue").fetchone()[0]
            room = max(self.max_size - size, 0)
            take = new[:room]
            con.executemany(
                "INSERT INTO explain_queue VALUES (?, ?, ?, ?, ?, ?)",
                [(k, first[k].user_id, json.dumps(list(first[k].history)), first[k].item_id, now,
                  served[k]) for k in take],
            )  # fmt: skip
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return len(take), len(new) - len(take)

    def peek(self, limit: int | None = None) -> list[QueuedPair]:
        """The oldest ``limit`` queued pairs (all when None), without removing them."""
        sql = "SELECT pair_key, user_id, history, item_id, served FROM explain_queue ORDER BY enqueued_at, pair_key"  # fmt: skip
        args: tuple = ()
        if limit is not None:
            sql, args = sql + " LIMIT ?", (int(limit),)
        with self._connect() as con:
            rows = con.execute(sql, args).fetchall()
        return [QueuedPair(k, u, tuple(json.loads(h)), i, s) for k, u, h, i, s in rows]

    def remove(self, keys: list[str]) -> int:
        """Remove the pairs ``keys`` (explained, or no longer servable); returns how many."""
        con = self._connect()
        con.execute("BEGIN IMMEDIATE")  # all or nothing
        try:
            cur = con.executemany(
                "DELETE FROM explain_queue WHERE pair_key = ?", [(k,) for k in keys]
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return cur.rowcount

    def __len__(self) -> int:
        with self._connect() as con:
            return con.execute("SELECT COUNT(*) FROM explain_queue").fetchone()[0]


class QueueWriter:
    """Appends to an ``ExplainQueue`` from a background thread so a request never waits on disk.

    ``offer`` never blocks: when ``buffer`` batches are already waiting the batch is dropped
    and counted (``dropped``). ``close`` flushes what is buffered."""

    def __init__(self, target: ExplainQueue, buffer: int = 1000, interval_s: float = 0.5) -> None:
        self.target, self.interval_s = target, interval_s
        self._q: queue.Queue[list[QueuedPair] | None] = queue.Queue(maxsize=buffer)
        self.added = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="explain-queue", daemon=True)
        self._thread.start()

    def offer(self, pairs: list[QueuedPair]) -> None:
        if not pairs:
            return
        try:
            self._q.put_nowait(pairs)
        except queue.Full:
            self.dropped += len(pairs)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[QueuedPair] = []
            try:
                item = self._q.get(timeout=self.interval_s)
                while True:
                    if item is None:
                        stop = True
                        break
                    batch += item
                    item = self._q.get_nowait()
            except queue.Empty:
                pass
            if batch:
                try:
                    added, dropped = self.target.push(batch)
                    self.added += added
                    self.dropped += dropped
                except Exception:  # noqa: BLE001 - serving goes on; the loss is counted
                    log.exception("explain queue: could not store %d pairs", len(batch))
                    self.dropped += len(batch)

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and stop the writer thread."""
        self._q.put(None)
        self._thread.join(timeout_s)
