"""The engine's gRPC edge: the server, a servicer that converts and
delegates to core, the conversion to and from protobuf, and the
interceptors (API key, errors to statuses)."""
