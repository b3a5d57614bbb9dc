"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens), as its
SDKs and Claude Code speak it: its protocol models (protocol), the
translation to and from the engine's gRPC messages (translate) and its routes
(routes, with the event stream in events). Errors are Anthropic's
{"type": "error", "error": {type, message}}, built by hearth.adapter.common.errors."""
