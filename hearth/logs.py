"""One logging setup for every Hearth process: one line per record, with the
control characters a client can put in paths, model names or headers escaped,
so no request can write a line that looks like another."""

import logging
import os
import re
import sys

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_control(text: str) -> str:
    r"""``text`` with every control character written as an escape (``\n``, ``\x1b``, ``\u2028``)."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class EscapingFormatter(logging.Formatter):
    """Escapes control characters in the message; a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        safe = logging.makeLogRecord(record.__dict__)
        safe.message = escape_control(record.message)
        return super().formatMessage(safe)


def configure_logging(process: str) -> None:
    level = os.environ.get("LLM_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        EscapingFormatter(
            fmt=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    logging.basicConfig(level=level, handlers=[handler])
