"""Ollama's native API (/api/*) on the adapter's port, translated to the engine's gRPC calls.

Served: GET / and /api/version, /api/tags, /api/ps, POST /api/show, /api/chat,
/api/generate (NDJSON streams by default), /api/embed, /api/embeddings,
/api/pull (Hugging Face GGUF repositories named "hf.co/owner/repo[:QUANT]"),
DELETE /api/delete, POST /api/copy. /api/create, /api/push and /api/blobs/*
answer 501. Errors are {"error": "..."}.

Names: a model with id "gemma-3-270m-q4_k_m" is listed as
"gemma-3-270m-q4_k_m:latest" and answers to both; nothing looser.

Where Hearth differs from Ollama, and says so rather than pretending:
- options.num_ctx is accepted and has no effect: the engine serves each model
  with one context (the smaller of its trained context and LLM_CONTEXT_SIZE);
- images, suffix, a custom template and context are refused with 400, and think
  on a model that does not reason (as Ollama refuses it);
- the listing's digest identifies the file (path, size, mtime), it is not its sha256;
- a pulled model is its file in the models folder, named after it; the name it
  was pulled by ("hf.co/owner/repo:Q4_K_M") is an alias of it in the config file.
"""
