"""Hearth's test suite: unit/ (no model, no server; `pytest -m unit`) and integration/ (real engines, servers and clients)."""
