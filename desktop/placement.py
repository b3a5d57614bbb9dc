"""Where the window opens: sized to fit the screen it opens on (the primary
monitor, else the first) and centred there, at the size the user last left
it when that still fits; the size is remembered in the user's state folder."""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

DEFAULT_WIDTH, DEFAULT_HEIGHT = 1280, 800
MIN_WIDTH, MIN_HEIGHT = 900, 600
# Of the screen, at most: room is left for panels, docks and the title bar.
SCREEN_SHARE = 0.92


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int


def state_file() -> Path:
    return Path(platformdirs.user_state_dir("hearth")) / "desktop-window.json"


def screen() -> Rect | None:
    """The screen the window opens on; None when it cannot be told."""
    try:
        import screeninfo
    except ImportError:
        return None
    try:
        monitors = screeninfo.get_monitors()
    except screeninfo.ScreenInfoError as exc:  # no display server library answered: the default size
        log.debug("cannot tell the screen's size: %s", exc)
        return None
    if not monitors:
        return None
    monitor = next((m for m in monitors if m.is_primary), monitors[0])
    return Rect(monitor.x, monitor.y, monitor.width, monitor.height)


def saved_size(path: Path) -> tuple[int, int] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        width, height = int(saved["width"]), int(saved["height"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (width, height) if width >= MIN_WIDTH and height >= MIN_HEIGHT else None


def save_size(path: Path, width: int, height: int) -> None:
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"width": width, "height": height}), encoding="utf-8")
    except OSError as exc:
        log.warning("cannot remember the window's size in %s: %s", path, exc)


def placement(on: Rect | None, saved: tuple[int, int] | None) -> Rect:
    """The window's position and size on screen ``on`` (None: unknown)."""
    width, height = saved or (DEFAULT_WIDTH, DEFAULT_HEIGHT)
    if on is None:
        return Rect(0, 0, width, height)
    room_width, room_height = int(on.width * SCREEN_SHARE), int(on.height * SCREEN_SHARE)
    width = max(min(width, room_width), min(MIN_WIDTH, on.width))
    height = max(min(height, room_height), min(MIN_HEIGHT, on.height))
    x = on.x + max(0, (on.width - width) // 2)
    y = on.y + max(0, (on.height - height) // 2)
    return Rect(x, y, width, height)
