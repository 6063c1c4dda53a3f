"""Log formatting: one JSON object per line for log pipelines, or plain text for people.

Structured values travel in ``extra={"fields": {...}}`` (see :func:`fields`). They are
nested under one attribute on purpose: ``logging`` refuses ``extra`` keys that clash
with :class:`logging.LogRecord` attributes such as ``name``, and a Kubernetes object
always has a name.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import orjson

Format = Literal["json", "text"]
FIELDS_ATTR = "fields"

# Libraries that log every HTTP call at INFO; their chatter drowns the decision log.
_NOISY = ("urllib3", "kubernetes.client.rest")


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """``extra=`` for a structured log call: ``log.info("msg", extra=fields(uid=uid))``."""
    return {FIELDS_ATTR: values}


def _record_fields(record: logging.LogRecord) -> Mapping[str, Any]:
    values = getattr(record, FIELDS_ATTR, None)
    return values if isinstance(values, Mapping) else {}


def _timestamp(record: logging.LogRecord) -> str:
    return dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...fields}`` on one line.

    Standard keys win over fields of the same name so that a field cannot forge the
    level or the logger a line claims to come from.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in _record_fields(record).items() if k not in line)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def _text_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the same fields, readable in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in _record_fields(record).items()]
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def formatter(fmt: Format) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")


def configure_logging(level: int | str = "INFO", fmt: Format = "json", *, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) in ``fmt``, replacing earlier handlers.

    Called once by the CLI. ``routewarden.decision`` logs allowed requests at DEBUG, so
    ``--log-level debug`` shows every decision and INFO only denials and warnings.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
