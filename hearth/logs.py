"""One logging setup for every Hearth process."""

import logging
import os


def configure_logging(process: str) -> None:
    level = os.environ.get("LLM_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
