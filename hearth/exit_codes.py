"""Exit statuses the engine and `hearth serve` share; a supervisor restarts an
engine that died, never one that said it cannot run."""

# The settings cannot work (an unsafe bind, an address in use).
BAD_SETTINGS = 2
# This llama.cpp build cannot run on this machine (no usable CPU backend, or
# its kernels die on this processor): restarting would only crash again.
CANNOT_RUN_HERE = 3
# Statuses after which the engine is not restarted.
FINAL = frozenset({BAD_SETTINGS, CANNOT_RUN_HERE})
