"""The adapter process: FastAPI translating each REST API family (openai/,
ollama/, beside each other) to the engine's gRPC calls. It holds no model and
imports only the ground floor (hearth.*) and the generated stubs, never the engine."""
