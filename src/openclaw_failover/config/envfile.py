"""The env file beside the config: ``KEY=value`` lines holding the secrets (``${VAR}``).

``ocf init`` writes it (values quoted with ``shlex.quote``), the systemd unit
(``EnvironmentFile=``) and the cron line (``set -a; . FILE``) load it for every check,
and ``ocf install`` reads it to see the config as the scheduled check will.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as ``set -a; . FILE`` reads simple ones (``export`` and quotes
    allowed, ``#`` comments skipped); {} when the file is missing or unreadable."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return values
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        try:
            words = shlex.split(value) if value else [""]
        except ValueError:  # an unbalanced quote: the text as written
            words = [value.strip()]
        values[key.removeprefix("export ").strip()] = words[0] if words else ""
    return values


def as_the_check_sees(config: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the env file beside ``config`` (its values win): the ``${VAR}`` values
    a scheduled check gets."""
    return {**env, **read_env_file(config.parent / "env")}
