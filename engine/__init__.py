"""The Hearth engine: owns GGUF models and serves them over gRPC.

Importing this package (or its generated stubs in ``hearth.engine.v1``) does
not import llama_cpp; only the runtime modules do.
"""
