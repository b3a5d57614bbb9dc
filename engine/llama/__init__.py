"""llama.cpp itself: backends, models, contexts, samplers, log-probabilities.
The only package that imports llama_cpp; it imports the engine's errors and
request types, nothing else of the engine."""
