"""Where Hearth keeps its files by default, per platform."""

from pathlib import Path

import platformdirs

APP_NAME = "hearth"


def default_models_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "models"


def default_responses_db() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "responses.sqlite3"


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.json"
