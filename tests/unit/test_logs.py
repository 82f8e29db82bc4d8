"""Every `logging` line is one JSON object, a traceback included as a field."""

from __future__ import annotations

import io
import json
import logging
import logging.config

from petalops.logs import JsonFormatter, json_log_config


def test_a_traceback_is_one_field_of_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("petalops.test.logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise OSError("registry down")
        except OSError:
            log.warning("gauge refresh failed for %s", "iris", exc_info=True)
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["level"] == "warning" and line["message"] == "gauge refresh failed for iris"
    assert (
        line["traceback"].startswith("Traceback") and "OSError: registry down" in line["traceback"]
    )


def test_the_uvicorn_config_routes_its_loggers_and_the_root_through_it() -> None:
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "")
    saved = {
        n: (
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).level,
            logging.getLogger(n).propagate,
        )
        for n in names
    }
    try:
        logging.config.dictConfig(json_log_config("WARNING", stream="ext://sys.stderr"))
        for name in names:
            handlers = logging.getLogger(name).handlers
            assert handlers and all(isinstance(h.formatter, JsonFormatter) for h in handlers)
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
