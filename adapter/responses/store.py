"""Stored responses: an embedded SQLite database (in the user data folder by
default) holding each stored response, the input items it was asked with and
the conversation a later ``previous_response_id`` continues; bounded by count
and age, and kept across restarts. The calls block: routes run them in a
worker thread (``asyncio.to_thread``)."""

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    stored_at REAL NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    conversation TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_age ON responses (stored_at);
"""


@dataclass(frozen=True)
class StoredResponse:
    response: dict
    # The items this request sent (each with an id), in order.
    input_items: list[dict]
    # Every item a follow-up turn continues from: the earlier turns', this input and this output.
    conversation: list[dict]


class ResponseStore:
    """One database file (or, with ``path`` None, memory only). ``max_count``
    0 keeps nothing."""

    def __init__(self, path: Path | None, *, max_count: int, max_age_s: float):
        self.max_count = max_count
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._db = self._open(path)

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        if path is not None:
            db = None
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise sqlite3.DatabaseError(f"schema version {version}, this Hearth knows {_SCHEMA_VERSION}")
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                return db
            except (OSError, sqlite3.Error) as exc:
                log.error("stored responses cannot use %s (%s); they are kept in memory until restart", path, exc)
                if db is not None:
                    db.close()
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.executescript(_SCHEMA)
        return db

    @property
    def enabled(self) -> bool:
        return self.max_count > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, response_id: str, stored: StoredResponse) -> bool:
        """Keeps ``stored``; False (and logged) when the database cannot (a full
        disk, say): the answer goes out unstored rather than failing."""
        if not self.enabled:
            return False
        now = time.time()
        row = (
            response_id,
            now,
            json.dumps(stored.response, ensure_ascii=False),
            json.dumps(stored.input_items, ensure_ascii=False),
            json.dumps(stored.conversation, ensure_ascii=False),
        )
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", row)
                    self._prune(now)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                log.error("response %s was not stored: %s", response_id, exc)
                return False
        return True

    def _prune(self, now: float) -> None:
        self._db.execute("DELETE FROM responses WHERE stored_at < ?", (now - self.max_age_s,))
        # Older than the max_count-th newest, found through the index.
        self._db.execute(
            "DELETE FROM responses WHERE stored_at < "
            "(SELECT stored_at FROM responses ORDER BY stored_at DESC LIMIT 1 OFFSET ?)",
            (self.max_count - 1,),
        )

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response, input_items, conversation FROM responses WHERE id = ? AND stored_at >= ?",
                (response_id, time.time() - self.max_age_s),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(*(json.loads(column) for column in row))

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
