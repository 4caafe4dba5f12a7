"""The workspace roots on both hosts, read without following a symlink below a root.

Standby side: :func:`resolve` a configured :class:`FileRoot`, :func:`scan` it
(relative path -> size, mtime, sha256) through directory file descriptors opened
with ``O_NOFOLLOW``, :func:`stage` one file into a staging tree.  Primary side:
:class:`Primary` looks at files over SFTP with ``lstat`` only.  The configured
path itself may go through symlinks (the admin chose it); nothing below it does.
Used by :mod:`openclaw_failover.syncback.files.sync` only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from openclaw_failover.config.loader import FileRoot

log = logging.getLogger(__name__)
CHUNK = 1 << 16
_VERSION = 1  # of the manifest
_ROOT = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR = _ROOT | os.O_NOFOLLOW
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
Refused = list[tuple[str, str]]  # (root-relative path, reason)


@dataclass(frozen=True)
class FileInfo:
    size: int
    mtime_ns: int
    sha256: str


Files = dict[str, FileInfo]  # path relative to the root on the standby -> what it held


@dataclass
class Root:
    """One configured root: a folder, or a single file (``only``) in a folder."""

    label: str  # str(FileRoot.path): the manifest's key
    local_dir: str  # resolved standby folder holding the files
    remote_dir: str  # the primary's folder, as configured until made absolute
    only: str | None = None  # a file root: its name on the standby
    remote_name: str | None = None  # a file root: its name on the primary
    files: Files = field(default_factory=dict)

    def rrel(self, rel: str) -> str:
        """The path on the primary (relative to ``remote_dir``) of the standby's ``rel``."""
        return self.remote_name or rel


class Changed(Exception):
    """A standby file no longer holds the content it was compared with."""


def resolve(fr: FileRoot, refused: Refused) -> Root | None:
    """The root to scan, or None (and why, in ``refused``) for a path that leaves it."""
    label, rpath = str(fr.path), fr.remote_path
    if ".." in fr.path.parts or ".." in rpath.split("/"):
        refused.append((label, "'..' in a configured path"))
        return None
    if rpath.startswith("~") and rpath != "~" and not rpath.startswith("~/"):
        refused.append((label, f"remote_path {rpath!r}: only '~/' is supported"))
        return None
    if fr.path.is_dir():
        return Root(label, os.path.realpath(fr.path), rpath.rstrip("/") or "/")
    local_dir = os.path.realpath(fr.path.parent)
    if rpath.endswith("/"):
        return Root(label, local_dir, rpath, fr.path.name, fr.path.name)
    rdir, rname = posixpath.split(rpath)
    return Root(label, local_dir, rdir, fr.path.name, rname)


def roots(configured: tuple[FileRoot, ...], refused: Refused) -> list[Root]:
    """The configured roots, resolved and scanned."""
    out = []
    for fr in configured:
        root = resolve(fr, refused)
        if root is not None:
            root.files = scan(root, refused)
            out.append(root)
    return out


def pending(root: Root, base: Files | None) -> bool:
    """Whether any file differs from the manifest's (every file does without one)."""
    old = base or {}
    return any(rel not in old or old[rel].sha256 != i.sha256 for rel, i in root.files.items())


def remote_abs(path: str, home: str) -> str:
    """``~``, ``~/x`` and relative paths start in the SSH user's home."""
    if path == "~" or path.startswith("~/"):
        path = path[2:]
    return posixpath.normpath(posixpath.join(home, path))


def scan(root: Root, refused: Refused) -> Files:
    """Every regular file under the root; symlinks and unreadable entries are refused."""
    files: Files = {}
    try:
        fd = os.open(root.local_dir, _ROOT)
    except FileNotFoundError:
        return files
    except OSError as exc:
        refused.append((root.label, f"cannot open: {exc.strerror or exc}"))
        return files
    try:
        for name in [root.only] if root.only else sorted(os.listdir(fd)):
            _visit(fd, name, name, root, files, refused)
    finally:
        os.close(fd)
    return files


def _visit(dir_fd: int, name: str, rel: str, root: Root, files: Files, refused: Refused) -> None:
    try:
        rel.encode()
    except UnicodeEncodeError:  # SFTP paths are UTF-8
        refused.append((os.fsencode(rel).decode(errors="replace"), "name is not UTF-8"))
        return
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            refused.append((root.rrel(rel), _symlink_reason(dir_fd, name, root, rel)))
        elif stat.S_ISDIR(mode) and not root.only:
            sub = os.open(name, _DIR, dir_fd=dir_fd)
            try:
                for child in sorted(os.listdir(sub)):
                    _visit(sub, child, f"{rel}/{child}", root, files, refused)
            finally:
                os.close(sub)
        elif stat.S_ISREG(mode):
            with os.fdopen(os.open(name, _FILE, dir_fd=dir_fd), "rb") as fh:
                st = os.fstat(fh.fileno())
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            files[rel] = FileInfo(st.st_size, st.st_mtime_ns, digest)
        else:
            refused.append((root.rrel(rel), "not a regular file"))
    except FileNotFoundError:
        return
    except OSError as exc:
        refused.append((root.rrel(rel), f"cannot read: {exc.strerror or exc}"))


def _symlink_reason(dir_fd: int, name: str, root: Root, rel: str) -> str:
    target = os.readlink(name, dir_fd=dir_fd)
    where = os.path.normpath(os.path.join(root.local_dir, posixpath.dirname(rel), target))
    if where == root.local_dir or where.startswith(root.local_dir.rstrip("/") + "/"):
        return "symlink (not followed; its target is synced under its own name)"
    return f"symlink pointing outside the root ({target}), not followed"


def stage(root: Root, rel: str, dest: Path, want: str) -> int:
    """Copy the standby's ``rel`` to ``dest`` (mode kept, no symlink followed); its size.

    Raises :class:`Changed` when it no longer has the sha256 ``want``."""
    fd = os.open(root.local_dir, _ROOT)
    parts = rel.split("/")
    try:
        for part in parts[:-1]:
            sub = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = sub
        src = os.open(parts[-1], _FILE, dir_fd=fd)
    finally:
        os.close(fd)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with os.fdopen(src, "rb") as fin, dest.open("wb") as fout:
        os.fchmod(fout.fileno(), stat.S_IMODE(os.fstat(fin.fileno()).st_mode))
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
    if digest.hexdigest() != want:
        raise Changed(rel)
    return dest.stat().st_size


class Primary:
    """The primary's files over SFTP: ``lstat`` only, results cached."""

    def __init__(self, sftp: paramiko.SFTPClient) -> None:
        self.sftp = sftp
        self._stats: dict[str, paramiko.SFTPAttributes | None] = {}
        self._names: dict[str, list[str]] = {}

    def mode(self, path: str) -> int | None:
        """The entry's st_mode (a symlink's own), None when it does not exist."""
        if path not in self._stats:
            try:
                self._stats[path] = self.sftp.lstat(path)
            except FileNotFoundError:
                self._stats[path] = None
        st = self._stats[path]
        return None if st is None else st.st_mode or 0

    def size(self, path: str) -> int:
        st = self._stats.get(path)
        return -1 if st is None or st.st_size is None else st.st_size

    def sha256(self, path: str) -> str:
        digest = hashlib.sha256()
        with self.sftp.open(path, "rb") as fh:
            fh.prefetch()
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def names(self, folder: str) -> list[str]:
        if folder not in self._names:
            self._names[folder] = self.sftp.listdir(folder)
        return self._names[folder]

    def blocked(self, top: str, rrel: str) -> str:
        """Why the folders leading to ``rrel`` under ``top`` cannot be used ("" when fine)."""
        parts = rrel.split("/")[:-1]
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            mode = self.mode(posixpath.join(top, sub))
            if mode is None:
                return ""
            if not stat.S_ISDIR(mode):
                what = "a symlink" if stat.S_ISLNK(mode) else "not a folder"
                return f"{sub} is {what} on the primary (not followed)"
        return ""

    def conflict_name(self, top: str, rrel: str, ts: str, sha: str) -> tuple[str, bool]:
        """(rel path for the standby's version of ``rrel``, already there): a copy with
        content ``sha`` left by an earlier, interrupted run is reused."""
        folder, name = posixpath.split(rrel)
        here = posixpath.join(top, folder)
        stem, taken = f"{name}.standby-", set(self.names(here))
        for other in sorted(x for x in taken if x.startswith(stem) and sha):
            path = posixpath.join(here, other)
            if stat.S_ISREG(self.mode(path) or 0) and self.sha256(path) == sha:
                return posixpath.join(folder, other), True
        candidate, n = stem + ts, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}{ts}-{n}"
        return posixpath.join(folder, candidate), False

    def makedirs(self, path: str) -> None:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            if posixpath.dirname(path) != path:
                self.makedirs(posixpath.dirname(path))
            self.sftp.mkdir(path)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest with FileInfo values, or None (missing or unusable: all counts as changed)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        data["roots"] = {
            label: {rel: FileInfo(int(s), int(m), str(h)) for rel, (s, m, h) in files.items()}
            for label, files in data["roots"].items()
        }
        return dict(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring manifest %s (%s): every file counts as changed", path, exc)
        return None


def write_manifest(path: Path, roots: dict[str, Files], **meta: Any) -> None:
    doc = {"version": _VERSION, "synced": False, **meta}
    doc["roots"] = {
        label: {rel: [i.size, i.mtime_ns, i.sha256] for rel, i in files.items()}
        for label, files in roots.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    from openclaw_failover.local import safefs

    safefs.write_atomic(path, json.dumps(doc, indent=1, sort_keys=True).encode())
