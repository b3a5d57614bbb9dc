"""Reasoning models: which format a model marks its thinking with, and the
streaming split of its output into reasoning and answer. Imports only the
ground floor."""
