"""Ollama's native API (/api/*) on the adapter's port, translated to the engine's gRPC calls."""
