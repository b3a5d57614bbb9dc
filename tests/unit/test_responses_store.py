"""The Responses API's stored responses: a real SQLite file, bounded by count
and age, kept across a reopen, and a broken file never stops the adapter."""

import sqlite3

from hearth.adapter.responses.store import ResponseStore, StoredResponse


def _stored(text: str) -> StoredResponse:
    item = {"type": "message", "id": f"msg_{text}", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return StoredResponse({"id": f"resp_{text}", "output_text": text}, [item], [item])


def test_a_response_outlives_the_store_that_kept_it(tmp_path):
    path = tmp_path / "data" / "responses.sqlite3"
    store = ResponseStore(path, max_count=10, max_age_s=3600)
    store.put("resp_a", _stored("a"))
    store.close()
    reopened = ResponseStore(path, max_count=10, max_age_s=3600)
    assert reopened.get("resp_a") == _stored("a")
    assert reopened.delete("resp_a") and not reopened.delete("resp_a")
    assert reopened.get("resp_a") is None


def test_the_oldest_go_beyond_max_count(tmp_path):
    store = ResponseStore(tmp_path / "r.sqlite3", max_count=3, max_age_s=3600)
    for name in "abcde":
        store.put(f"resp_{name}", _stored(name))
    assert store.count() == 3
    assert store.get("resp_a") is None and store.get("resp_b") is None
    assert store.get("resp_e") == _stored("e")


def test_expired_responses_are_not_found(tmp_path, monkeypatch):
    import hearth.adapter.responses.store as module

    store = ResponseStore(tmp_path / "r.sqlite3", max_count=10, max_age_s=60)
    clock = [1000.0]
    monkeypatch.setattr(module.time, "time", lambda: clock[0])
    store.put("resp_old", _stored("old"))
    clock[0] += 61
    assert store.get("resp_old") is None
    store.put("resp_new", _stored("new"))  # storing prunes what expired
    assert store.count() == 1


def test_max_count_zero_keeps_nothing(tmp_path):
    store = ResponseStore(tmp_path / "r.sqlite3", max_count=0, max_age_s=60)
    assert not store.enabled
    store.put("resp_a", _stored("a"))
    assert store.get("resp_a") is None


def test_a_file_that_is_no_database_falls_back_to_memory(tmp_path, caplog):
    path = tmp_path / "r.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = ResponseStore(path, max_count=10, max_age_s=60)
    store.put("resp_a", _stored("a"))
    assert store.get("resp_a") == _stored("a")
    assert "kept in memory" in caplog.text
    assert path.read_bytes().startswith(b"this is not a database")


def test_a_newer_schema_is_left_alone(tmp_path):
    path = tmp_path / "r.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    store = ResponseStore(path, max_count=10, max_age_s=60)
    store.put("resp_a", _stored("a"))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 99
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_write_the_database_refuses_leaves_the_answer_unstored_not_failed(tmp_path, caplog):
    store = ResponseStore(tmp_path / "r.sqlite3", max_count=10, max_age_s=3600)
    assert store.put("resp_a", _stored("a"))
    # A second connection holds the write lock, as another process on the same file could; the
    # store waits its busy timeout (5 s) and gives up.
    blocker = sqlite3.connect(tmp_path / "r.sqlite3", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert store.put("resp_b", _stored("b")) is False
    finally:
        blocker.rollback()
        blocker.close()
    assert "resp_b was not stored" in caplog.text
    # The store goes on working once the lock is gone.
    assert store.put("resp_c", _stored("c")) and store.get("resp_a") == _stored("a")
