"""Models in memory: loading under a memory budget, keep-alive, the
continuous-batching scheduler of each loaded model, embedding contexts.
May import the domain types, llama/, models/, templates/ and generation/."""
