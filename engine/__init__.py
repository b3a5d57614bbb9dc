"""The Hearth engine: owns GGUF models and serves them over gRPC.

Layers, each importing only those before it: the domain types, errors,
events and blocking helpers at this level; llama/ (the only importer of
llama_cpp); models/; templates/, grammar/, tools/; generation/; runtime/;
service/ (the use cases), composed by core; rpc/ (the gRPC edge). Importing
this package (or its generated stubs in ``hearth.engine.v1``) does not import
llama_cpp.
"""
