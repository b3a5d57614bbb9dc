"""The `hearth` command: the one top floor, which may import the engine (to
run it, or to work on the models folder when no engine runs)."""

from hearth.cli.main import main

__all__ = ["main"]
