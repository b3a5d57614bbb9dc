"""OpenAI's Responses API (/v1/responses), as the openai SDK's
``client.responses`` and Codex CLI speak it: its protocol models (protocol),
the translation to and from the engine's gRPC messages (translate), its event
stream (events) and routes. Errors are OpenAI's {"error": {...}}; a stream
that fails midway ends with an ``error`` event."""
