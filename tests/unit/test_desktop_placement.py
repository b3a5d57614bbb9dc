"""Where the desktop window opens: within the screen it opens on, centred,
at the size the user left it when that still fits."""

import pytest

from hearth.desktop.placement import MIN_HEIGHT, MIN_WIDTH, Rect, placement, save_size, saved_size

pytestmark = pytest.mark.unit


def inside(window: Rect, screen: Rect) -> bool:
    return (
        screen.x <= window.x
        and window.x + window.width <= screen.x + screen.width
        and screen.y <= window.y
        and window.y + window.height <= screen.y + screen.height
    )


@pytest.mark.parametrize(
    "screen",
    [Rect(0, 0, 1280, 800), Rect(0, 0, 1920, 1080), Rect(1920, 0, 1366, 768), Rect(0, 0, 1024, 640)],
)
def test_the_window_fits_the_screen_it_opens_on(screen):
    for saved in (None, (3000, 2000), (1000, 700)):
        window = placement(screen, saved)
        assert inside(window, screen), (screen, saved, window)
    # Centred on its own screen, also the second of two.
    window = placement(screen, None)
    assert abs((window.x - screen.x) - (screen.x + screen.width - window.x - window.width)) <= 1


def test_a_remembered_size_that_fits_is_kept(tmp_path):
    path = tmp_path / "desktop-window.json"
    assert saved_size(path) is None
    save_size(path, 1000, 700)
    assert saved_size(path) == (1000, 700)
    window = placement(Rect(0, 0, 1920, 1080), saved_size(path))
    assert (window.width, window.height) == (1000, 700)
    # Too small to be the user's choice, or unreadable: not used.
    save_size(path, MIN_WIDTH - 1, MIN_HEIGHT)
    assert saved_size(path) == (1000, 700)
    path.write_text("{not json")
    assert saved_size(path) is None
