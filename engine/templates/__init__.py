"""Chat templates: the built-in ones, the sandbox untrusted ones render in
(in worker processes), choosing a model's template, and fitting tools to it.
Imports nothing of the engine but its errors; never llama_cpp."""
