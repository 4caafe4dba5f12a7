"""Logging: a rotating file in state_dir, stderr under systemd or with -v; secrets masked."""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openclaw_failover.config.secrets import Masker

LOG_FILE = "ocf.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StateFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log that never follows a symlink and creates its file 0600."""

    def _open(self) -> Any:
        from openclaw_failover.local import safefs

        fd = safefs.open_fd(Path(self.baseFilename), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class MaskFilter(logging.Filter):
    """Replace secrets in every record before any handler formats it."""

    def __init__(self, mask: Masker) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def under_systemd(env: Mapping[str, str]) -> bool:
    return bool(env.get("INVOCATION_ID") or env.get("JOURNAL_STREAM"))


def setup(
    state_dir: Path | None, *, verbose: int, env: Mapping[str, str], mask: Masker
) -> logging.Logger:
    """Configure the package logger; safe to call more than once (tests)."""
    logger = logging.getLogger("openclaw_failover")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    logger.propagate = False
    filt = MaskFilter(mask)
    problem = ""
    if state_dir is not None:
        try:
            from openclaw_failover.local import safefs

            safefs.ensure_dir(state_dir)
            handler = _StateFileHandler(
                state_dir / LOG_FILE, maxBytes=1_000_000, backupCount=5, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter(FORMAT))
            handler.addFilter(filt)
            logger.addHandler(handler)
        except OSError as exc:
            verbose = max(verbose, 1)
            problem = f"cannot write the log in {state_dir}: {exc.strerror or exc}"
    if verbose or under_systemd(env):
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        stream.addFilter(filt)
        logger.addHandler(stream)
    if problem:
        logger.warning("%s", problem)
    return logger
