"""OpenAI request and response shapes, as pydantic models."""
