"""OpenAI's REST API (/v1/chat/completions, /v1/completions, /v1/embeddings,
/v1/models, /tokenize and /detokenize): its protocol models (protocol/), its
routes (routes/), and the translation to and from the engine's gRPC messages
(translate, logprobs). Errors are OpenAI's {"error": {...}}."""
