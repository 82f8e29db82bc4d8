"""Every log line of a long-running petalops process is one JSON object.

The server's request and event lines are written by `petalops.serving.accesslog.JsonLog`;
this formatter covers everything that goes through `logging` (uvicorn's own lines, the
gauge refresher's and the spool loader's warnings), with a traceback as one string field
instead of the multi-line text that breaks a JSON-lines log.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """``{"ts", "event": "log", "level", "logger", "message", "pid"[, "traceback"]}``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 6),
            "event": "log",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": os.getpid(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


def json_log_config(level: str = "WARNING", stream: str = "ext://sys.stdout") -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary (uvicorn's ``log_config``) that sends the
    root logger and uvicorn's loggers through `JsonFormatter` on one stream."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": stream}
    named = {"handlers": ["json"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {"uvicorn": named, "uvicorn.error": named, "uvicorn.access": named},
        "root": {"handlers": ["json"], "level": level},
    }
