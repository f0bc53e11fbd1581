"""Persistent, content-addressed store of LLM generations.

Key = sha256(model id + decoding parameters + full prompt); value = text, flags, token counts,
latency and timestamp. SQLite in WAL mode with one transaction per batch, so ``kill -9`` in the
middle of a run loses at most the batch in flight and a rerun generates only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    flags TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    created_at REAL NOT NULL
)
"""


def cache_key(model_id: str, decoding: dict[str, Any], prompt: str) -> str:
    """Content address of one generation."""
    payload = json.dumps([model_id, decoding, prompt], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class Record:
    """One stored generation."""

    key: str
    model: str
    kind: str
    text: str
    flags: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    created_at: float = field(default_factory=time.time)


class GenerationCache:
    """SQLite-backed cache; safe to share between threads of one process and between processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=60.0, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
        self._conn.execute(SCHEMA)
        self._conn.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, Record]:
        """Stored records for the keys that are present."""
        out: dict[str, Record] = {}
        with self._lock:
            for start in range(0, len(keys), 900):  # SQLite's bound-parameter limit
                chunk = list(keys[start : start + 900])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, model, kind, text, flags, prompt_tokens, completion_tokens, "
                    f"latency_s, created_at FROM generations WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for r in rows:
                    out[r[0]] = Record(r[0], r[1], r[2], r[3], json.loads(r[4]), *r[5:])
        return out

    def put_many(self, records: Iterable[Record]) -> int:
        """Store records in one transaction (durable when this returns); returns how many."""
        rows = [
            (r.key, r.model, r.kind, r.text, json.dumps(r.flags), r.prompt_tokens,
             r.completion_tokens, r.latency_s, r.created_at)
            for r in records
        ]  # fmt: skip
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
