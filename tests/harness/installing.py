"""`ocf install` as the CLI runs it, for tests that pass their own home, user and runner:
the config loaded as the check will see it (install.load), then install.install."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openclaw_failover.config.loader import ConfigError
from openclaw_failover.ops import install
from openclaw_failover.ops.installguard import InstallError

# A primary section that validates: the key files are ~/.ssh's (see ssh_files).
PRIMARY = "primary:\n  host: 127.0.0.9\n  ssh:\n    user: pi\n"


def ssh_files(home: Path) -> None:
    """The key and known_hosts files the config's defaults point at (~/.ssh)."""
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    for name in ("id_ed25519", "known_hosts"):
        (home / ".ssh" / name).touch()


def run_install(
    kind: str,
    *,
    config_path: Path,
    env: Mapping[str, str],
    say: Callable[[str], None],
    is_root: bool,
    home: Path | None = None,
    user: str | None = None,
    watch: bool = False,
    **kw: Any,
) -> int:
    """Exit status as `ocf install` gives it; messages through ``say``."""
    try:
        cfg = install.load(kind, config_path, env, root=is_root, user=user, home=home, watch=watch)
    except InstallError as exc:
        say(f"ocf install {kind}: {exc}")
        return exc.status
    except ConfigError as exc:
        say(f"ocf: {exc}")
        return 2
    return install.install(
        kind, cfg, env=env, say=say, is_root=is_root, home=home, user=user, watch=watch, **kw
    )
