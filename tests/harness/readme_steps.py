"""The README's setup, word for word, as a new unix account (used by tests/test_docs_readme.py).

The README marks each shell block a user runs during setup with
``<!-- docs-test: NAME -->`` right above its fence.  :func:`blocks` finds them;
:func:`substitute` replaces the few values that name a real Mac (its address,
user, port, fingerprint, ...) by the sandbox's, and fails when a value is no
longer in the block, so that a changed README breaks the test instead of
silently running something else.  :class:`FreshUser` is a throwaway account
(``useradd -m``, removed with ``userdel -r``) that runs a block in a new
login shell, as a user who logged in again would.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"<!-- docs-test: ([\w-]+) -->\n```sh\n(.*?)^```", re.S | re.M)


def blocks(text: str | None = None) -> dict[str, str]:
    """Every marked block of the README (name -> its shell text); a name used twice fails."""
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(README.read_text() if text is None else text):
        name, body = match.group(1), match.group(2)
        if name in found:
            raise AssertionError(f"README: two blocks marked docs-test: {name}")
        found[name] = body
    return found


def substitute(block: str, table: Mapping[str, str]) -> str:
    """``block`` with each key of ``table`` replaced by its value; every key must occur."""
    for old, new in table.items():
        if old not in block:
            raise AssertionError(
                f"the README's block no longer contains {old!r}: update the substitutions"
                f" of tests/test_docs_readme.py\n--- block:\n{block}"
            )
        block = block.replace(old, new)
    return block


def unavailable() -> str | None:
    """Why a throwaway account cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root to create a throwaway user account (useradd); CI runs as root"
    for tool in ("useradd", "userdel", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install passwd util-linux)"
    return None


class FreshUser:
    """A new account with a random name and an empty home from /etc/skel."""

    def __init__(self) -> None:
        self.name = "ocfdoc" + secrets.token_hex(4)
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", self.name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)

    def run(
        self, script: str, *, env: Mapping[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """``script`` in a new login shell of this user (``bash -e -o pipefail -x``).

        ``env``: variables kept across the login (``runuser --whitelist-environment``)."""
        path = self.home / f".docs-test-{secrets.token_hex(4)}.sh"
        path.write_text(script)
        os.chown(path, self.uid, self.gid)
        env = dict(env or {})
        argv = ["runuser", "--login", self.name]
        if env:
            argv += ["--whitelist-environment", ",".join(env)]
        argv += ["--command", f"bash -e -o pipefail -x {path}"]
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
            )
        finally:
            path.unlink(missing_ok=True)

    def remove(self) -> None:
        """``userdel -r``: the account and its home (nothing of it keeps running)."""
        subprocess.run(["userdel", "--remove", self.name], check=True, capture_output=True)
