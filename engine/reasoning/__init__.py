"""Reasoning models: which format a model marks its thinking with, and the
streaming split of its output into reasoning and answer (gpt-oss's harmony
channels and the tool calls addressed in them). Imports the ground floor and
the tools package's call collector."""
