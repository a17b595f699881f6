"""JSON log lines, each carrying the request id of the query that caused it."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

# Set by the API for each request (from X-Request-ID or made up), read by the log formatter,
# the LLM client (sent on to vLLM) and the audit record of the answer.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What a caller may send as its own id: short, printable, no spaces or quotes (it is echoed in
# a response header and written into logs and the audit log).
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def accepted_request_id(offered: str | None) -> str:
    """The caller's id when it is a sane token, else a new random one."""
    if offered and _ACCEPTED_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process kind, message, request id."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": self._process,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current:
            entry["request_id"] = current
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str, level: str, process: str) -> None:
    """Route every logger (uvicorn's and Celery's included) through one handler on stderr,
    which journald (systemd) or Docker collects."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's loggers keep their own handlers unless told otherwise; ours formats them.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
