"""Logging: one line per event, JSON for production, readable colours on a developer's terminal.

Usage::

    setup(json_lines=not config.server.sandbox)
    logging.getLogger("gift_bot.x").info("message handled", extra={"kind": "text", "ms": 1.2})

Modules log through the standard library with `extra=` fields; structlog's
formatter renders them. Never log an OpenID (hash it) or a full phone number.
"""

from __future__ import annotations

import hashlib
import logging
import sys

import structlog


def setup(json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def formatter(json_lines: bool) -> logging.Formatter:
    """How a line looks: `event` is the message, `extra=` fields become keys beside it."""
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def hashed(openid: str) -> str:
    """A stable, non-reversible tag for logs: never log an OpenID itself."""
    return hashlib.sha256(openid.encode()).hexdigest()[:12]
