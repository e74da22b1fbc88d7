"""Log events: one line each for what changes how the fake answers (a scenario loaded, a fault fired, a queued
outcome used) and for every webhook delivery attempt; nothing per ordinary request.

Loggers are named ``wavespeed_mock.<part>``. Each record carries ``event`` (e.g. ``fault.fired``) and ``fields``
(a dict of JSON values); as text it reads ``fault.fired id=3 action=status status=503``, and ``JsonFormatter``
writes one JSON object per line: ``time``, ``level``, ``logger``, ``event``, then the fields. API keys are never
logged: tenants appear as ``contract.tenants.fingerprint`` values.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

ROOT = "wavespeed_mock"
FORMATS = ("text", "json")
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:*@")

# A library's events must not reach stderr through logging's last-resort handler when the embedding program (a
# test run, create_app in someone's code) configured nothing; records still propagate to its handlers.
logging.getLogger(ROOT).addHandler(logging.NullHandler())


def get_logger(part: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT}.{part}")


def event(logger: logging.Logger, name: str, /, level: int = logging.INFO, **fields: Any) -> None:
    """Log event ``name`` with ``fields``; the text is built only when the level is enabled."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", _Text(name, fields), extra={"event": name, "fields": fields})


class _Text:
    """The message of an event record, rendered lazily (``event k=v ...``, ``None`` fields left out)."""

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        self.name = name
        self.fields = fields

    def __str__(self) -> str:
        parts = [self.name]
        parts += [f"{key}={_value(value)}" for key, value in self.fields.items() if value is not None]
        return " ".join(parts)


def _value(value: Any) -> str:
    if isinstance(value, str) and value and set(value) <= _PLAIN:
        return value
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """One JSON object per record. Events keep their fields as keys; other records (uvicorn's) get
    ``event: "log"`` and their text as ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
        }
        name = getattr(record, "event", None)
        if isinstance(name, str):
            data["event"] = name
            for key, value in (getattr(record, "fields", None) or {}).items():
                data.setdefault(key, value)
        else:
            data["event"] = "log"
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def logging_config(fmt: str = "text", level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: uvicorn's own configuration plus the fake's loggers, in
    uvicorn's text format or (``json``) with every handler writing ``JsonFormatter`` lines.

    It is passed to uvicorn as ``log_config`` so that worker processes configure themselves the same way.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    from uvicorn.config import LOGGING_CONFIG  # only the server needs it; the model layer imports this module

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"][ROOT] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "use_colors": None,
        "fmt": "%(levelprefix)s %(name)s %(message)s",
    }
    if fmt == "json":
        config["formatters"] = {name: {"()": f"{__name__}.JsonFormatter"} for name in config["formatters"]}
    # uvicorn's handlers name sys.stderr and sys.stdout as they are at configuration time; a server stopped later
    # (a test's, once pytest has closed that test's capture) would then write to a closed file.
    for handler in config["handlers"].values():
        stream = handler.pop("stream", None)
        if stream in _LIVE_STREAMS:
            handler["class"] = f"{__name__}.{_LIVE_STREAMS[stream]}"
    config["handlers"][ROOT] = {"class": f"{__name__}.StderrHandler", "formatter": ROOT}
    config["loggers"][ROOT] = {"handlers": [ROOT], "level": level.upper(), "propagate": False}
    return config


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when logging was configured: a server
    started in a process whose stderr is later swapped (pytest's capture, an embedding tool) keeps logging."""

    name_in_sys = "stderr"

    def __init__(self) -> None:
        super().__init__(getattr(sys, self.name_in_sys))

    @property
    def stream(self) -> Any:
        return getattr(sys, self.name_in_sys)

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current one, read at emit time


class StdoutHandler(StderrHandler):
    """The same for ``sys.stdout`` (uvicorn's access log)."""

    name_in_sys = "stdout"


_LIVE_STREAMS = {"ext://sys.stderr": "StderrHandler", "ext://sys.stdout": "StdoutHandler"}
