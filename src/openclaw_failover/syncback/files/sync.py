"""Workspace files standby -> primary at give-back (rsync over SSH), never losing a version.

At takeover :func:`take_manifest` notes every file under the configured roots
(relative path -> size, mtime, sha256).  At give-back :func:`sync_files` looks at
each file that changed on the standby since then and at the primary's copy (SFTP):

* the primary has no such file, or still has the manifest's version: copied;
* the primary already has the standby's version: nothing to do;
* anything else (changed on both sides, or no manifest): the primary's copy stays
  and the standby's is written beside it as ``NAME.standby-<UTC time>``.

Decisions compare sha256 digests, never timestamps: clock skew does not matter.
Nothing below a root is followed through a symlink, on either side (filetree.py).
rsync replaces files with ``--backup``; a replaced file that is not the version
we checked (the primary wrote it meanwhile) is put back and the standby's version
becomes a conflict copy.  Imported only at takeover and give-back.
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker, describe
from openclaw_failover.core.model import CommandResult
from openclaw_failover.local.runner import run
from openclaw_failover.primary import remote
from openclaw_failover.syncback.files import tree as ft
from openclaw_failover.syncback.files.tree import FileInfo, Files, Primary, Root, read_manifest

log = logging.getLogger(__name__)
MANIFEST_FILE = "files-manifest.json"
_RATE = 100_000  # bytes/s assumed at worst when scaling the rsync timeout
_REMOTE_ERRORS = (OSError, paramiko.SSHException, UnicodeError)

__all__ = ["MANIFEST_FILE", "FileInfo", "FileSyncReport", "sync_files", "take_manifest"]


@dataclass
class FileSyncReport:
    """What :func:`sync_files` did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    copied: list[str] = field(default_factory=list)  # root-relative paths on the primary
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (path, conflict copy)
    unchanged: int = 0
    refused: ft.Refused = field(default_factory=list)  # (path, reason)
    errors: list[str] = field(default_factory=list)  # masked

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        n = len(self.conflicts)
        names = ", ".join(_shown(c) for _, c in self.conflicts[:3]) + (", ..." if n > 3 else "")
        copies = f"{n} conflict cop{'y' if n == 1 else 'ies'}" + (f" ({names})" if n else "")
        if self.dry_run:
            text = f"files: would copy {len(self.copied)}, would write {copies}"
        else:
            text = f"files: {len(self.copied)} copied, {copies}"
        text += f", {len(self.refused)} refused"
        if self.errors:
            s = "s" if len(self.errors) > 1 else ""
            text += f"; {len(self.errors)} error{s}: {_shown(self.errors[0])}"
        return text

    def lines(self) -> list[str]:
        """One line per file, for the dry run and the log."""
        verb = "would copy" if self.dry_run else "copied"
        out = [f"{verb} {_shown(p)}" for p in self.copied]
        out += [
            f"conflict: primary's {_shown(p)} kept, standby's -> {_shown(c)}"
            for p, c in self.conflicts
        ]
        out += [f"refused {_shown(p)}: {_shown(why)}" for p, why in self.refused]
        return out + [f"error: {_shown(e)}" for e in self.errors]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _shown(name: str) -> str:
    """A file name on one line: a newline in it is shown as \\n, never as a new line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], name)


@dataclass
class _Plan:
    copy: dict[str, str | None] = field(default_factory=dict)  # rel -> primary's sha before
    conflict: dict[str, str] = field(default_factory=dict)  # rel -> conflict copy (remote rel)
    skip: set[str] = field(default_factory=set)  # rels not settled: keep their old baseline

    def drop(self, rels: set[str] | list[str]) -> None:
        for rel in list(rels):
            self.copy.pop(rel, None)
            self.conflict.pop(rel, None)
            self.skip.add(rel)


# --------------------------------------------------------------------------- manifest


def take_manifest(cfg: Config) -> Path:
    """Note the standby's files under every root (at takeover); raise OSError if unwritable.

    A manifest whose give-back has not synced yet is kept: a new one would make
    the standby's changes so far look like the starting point."""
    path = cfg.state_dir / MANIFEST_FILE
    old = read_manifest(path)
    if old is not None and not old.get("synced", True):
        log.info("keeping %s: its give-back has not synced yet", path)
        return path
    roots = ft.roots(cfg.files, [])
    ft.write_manifest(path, {r.label: r.files for r in roots}, taken_at=time.time())
    return path


# --------------------------------------------------------------------------- planning


def _compare(p: Primary, root: Root, rel: str, old: FileInfo | None) -> tuple[str, str | None]:
    """("copy", primary's sha or None) | ("same", None) | ("conflict", None) | ("refused", why)."""
    info, rrel = root.files[rel], root.rrel(rel)
    why = p.blocked(root.remote_dir, rrel)
    if why:
        return "refused", why
    path = posixpath.join(root.remote_dir, rrel)
    mode = p.mode(path)
    if mode is None:
        return "copy", None
    if stat.S_ISLNK(mode):
        return "refused", "a symlink on the primary (not followed)"
    if not stat.S_ISREG(mode):
        return "refused", "not a regular file on the primary"
    sizes = {info.size} | ({old.size} if old else set())
    sha = p.sha256(path) if p.size(path) in sizes else ""
    if sha == info.sha256:
        return "same", None
    if old is not None and sha == old.sha256:
        return "copy", sha
    return "conflict", None


def _plan(
    sftp: paramiko.SFTPClient, root: Root, base: Files | None, ts: str, report: FileSyncReport
) -> _Plan:
    plan, p = _Plan(), Primary(sftp)
    for rel, info in root.files.items():
        old = (base or {}).get(rel)
        if old is not None and old.sha256 == info.sha256:
            report.unchanged += 1
            continue
        rrel = root.rrel(rel)
        try:
            verdict, detail = _compare(p, root, rel, old)
            if verdict == "conflict":
                detail, there = p.conflict_name(root.remote_dir, rrel, ts, info.sha256)
                verdict = "delivered" if there else verdict
        except _REMOTE_ERRORS as exc:
            report.errors.append(f"{rrel}: cannot check it on the primary: {describe(exc)}")
            plan.skip.add(rel)
            continue
        if verdict == "refused":
            report.refused.append((rrel, str(detail)))
            plan.skip.add(rel)
        elif verdict == "same":
            report.unchanged += 1
        elif verdict == "copy":
            plan.copy[rel] = detail
        elif verdict == "delivered":  # by an earlier, interrupted run
            report.conflicts.append((rrel, str(detail)))
        else:
            plan.conflict[rel] = str(detail)
    return plan


# --------------------------------------------------------------------------- transfer


def _ssh_command(cfg: Config) -> str:
    """rsync's -e: OpenSSH with the probe's key and known_hosts, nothing from ~/.ssh.

    ssh expands %-tokens in both paths and splits -o values like a shell;
    rsync splits -e on spaces outside quotes, where '' is a literal quote."""
    ssh = cfg.primary.ssh
    argv = ["ssh", "-F", "/dev/null", "-p", str(ssh.port)]
    for name, path in (("IdentityFile", ssh.key_file), ("UserKnownHostsFile", ssh.known_hosts)):
        value = str(path).replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
        argv += ["-o", f'{name}="{value}"']
    argv += ["-o", "GlobalKnownHostsFile=/dev/null"]
    argv += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    argv += ["-o", "IdentityAgent=none"]
    argv += ["-o", f"ConnectTimeout={max(1, math.ceil(ssh.connect_timeout))}"]
    return " ".join("'" + a.replace("'", "''") + "'" for a in argv)


def _rsync(
    cfg: Config, tree: Path, listing: Path, root: Root, suffix: str, size: int, mask: Masker
) -> CommandResult:
    ssh = cfg.primary.ssh
    host = f"[{cfg.primary.host}]" if ":" in cfg.primary.host else cfg.primary.host
    argv = ["rsync", "--ignore-times", "--no-implied-dirs", "--backup", f"--suffix={suffix}"]
    argv += ["--protect-args", "--from0", f"--files-from={listing}"]
    argv += [f"--timeout={max(1, math.ceil(ssh.command_timeout))}", "-e", _ssh_command(cfg)]
    argv += ["--", f"{tree}/", f"{ssh.user}@{host}:{root.remote_dir.rstrip('/')}/"]
    timeout = ssh.connect_timeout + 2 * ssh.command_timeout + size / _RATE
    return run(argv, timeout=timeout, mask=mask)


def _stage_all(root: Root, plan: _Plan, tree: Path, report: FileSyncReport) -> tuple[bytes, int]:
    """Snapshot what goes over into ``tree``; (NUL-separated --files-from list, bytes)."""
    listing, size = b"", 0
    jobs = [(rel, root.rrel(rel)) for rel in plan.copy] + list(plan.conflict.items())
    for rel, dest in jobs:
        try:
            size += ft.stage(root, rel, tree / dest, root.files[rel].sha256)
            listing += os.fsencode(dest) + b"\0"
        except (OSError, ft.Changed) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "changed during the sync"
            report.errors.append(f"{root.rrel(rel)}: {why} on the standby; not copied")
            plan.drop([rel])
    return listing, size


def _transfer(
    cfg: Config, p: Primary, root: Root, plan: _Plan, ts: str, report: FileSyncReport, mask: Masker
) -> None:
    suffix = f".ocf-replaced-{ts}"
    with tempfile.TemporaryDirectory(prefix="ocf-files-") as tmp:
        listing, size = _stage_all(root, plan, Path(tmp, "tree"), report)
        if not listing:
            return
        p.makedirs(root.remote_dir)
        Path(tmp, "files-from").write_bytes(listing)
        res = _rsync(cfg, Path(tmp, "tree"), Path(tmp, "files-from"), root, suffix, size, mask)
    swapped = _settle(p.sftp, root, plan, suffix, ts)
    report.conflicts += swapped
    if not res.ok:
        report.errors.append(_rsync_error(cfg, res, root))
        plan.drop(set(plan.copy) | set(plan.conflict))
        return
    back = {rrel for rrel, _ in swapped}
    report.copied += [r for r in map(root.rrel, plan.copy) if r not in back]
    report.conflicts += [(root.rrel(rel), name) for rel, name in plan.conflict.items()]


def _settle(
    sftp: paramiko.SFTPClient, root: Root, plan: _Plan, suffix: str, ts: str
) -> list[tuple[str, str]]:
    """Drop rsync's backup of each replaced file, unless the primary wrote another
    version after we looked: then that version goes back and ours goes beside it."""
    p, swapped = Primary(sftp), []
    for rel, expected in plan.copy.items():
        rrel = root.rrel(rel)
        path = posixpath.join(root.remote_dir, rrel)
        mode = p.mode(path + suffix)
        if mode is None:
            continue
        if expected and stat.S_ISREG(mode) and p.sha256(path + suffix) == expected:
            sftp.remove(path + suffix)
            continue
        name, _ = p.conflict_name(root.remote_dir, rrel, ts, "")
        sftp.rename(path, posixpath.join(root.remote_dir, name))
        sftp.rename(path + suffix, path)
        log.warning("%s changed on the primary during the sync; standby's copy is %s", rrel, name)
        swapped.append((rrel, name))
    return swapped


def _rsync_error(cfg: Config, res: CommandResult, root: Root) -> str:
    if "command not found" in res.stderr or res.returncode == 127:
        return f"rsync is not installed on the primary {cfg.primary.host} (not in its PATH)"
    first = next((line for line in res.stderr.splitlines() if line.strip()), "")  # ssh's why
    why = f"exit {res.returncode}: {first[:200]}" if first and res.returncode else res.summary()
    return f"rsync to the primary failed for {root.label}: {why}"


# --------------------------------------------------------------------------- public API


def sync_files(
    cfg: Config, *, mask: Masker, dry_run: bool = False, now: float | None = None
) -> FileSyncReport:
    """Copy the standby's changed files to the primary (see the module doc); never raises.

    After a real run the manifest holds the standby's files as synced, so a
    second run finds nothing to do; files not settled keep their old entry."""
    now = time.time() if now is None else now
    report = FileSyncReport(dry_run=dry_run)
    roots = ft.roots(cfg.files, report.refused)
    path = cfg.state_dir / MANIFEST_FILE
    manifest = read_manifest(path)
    new = _sync_roots(cfg, roots, manifest["roots"] if manifest else None, report, mask, now)
    if new is not None and not dry_run:
        taken = manifest.get("taken_at") if manifest else None
        try:
            ft.write_manifest(path, new, taken_at=taken, synced_at=now, synced=report.ok)
        except OSError as exc:
            log.warning("cannot update %s: %s", path, exc.strerror or exc)
    report.errors = [mask(e) for e in report.errors]
    report.refused = [(mask(p), mask(why)) for p, why in report.refused]
    return report


def _sync_roots(
    cfg: Config,
    roots: list[Root],
    bases: dict[str, Files] | None,
    report: FileSyncReport,
    mask: Masker,
    now: float,
) -> dict[str, Files] | None:
    """The manifest's next roots, or None when nothing could be looked at."""
    if not any(ft.pending(r, (bases or {}).get(r.label)) for r in roots):
        report.unchanged = sum(len(r.files) for r in roots)  # no need to ask the primary
        return (bases or {}) | {r.label: r.files for r in roots}
    tools = [t for t in ("rsync", "ssh") if shutil.which(t) is None]
    if tools and not report.dry_run:
        report.errors.append(f"{' and '.join(tools)} not installed on the standby (not in PATH)")
        return None
    try:
        client = remote.connect(cfg)
    except remote.RemoteError as err:
        report.errors.append(f"cannot reach the primary over SSH: {err.detail}")
        return None
    try:
        return _sync(cfg, client, roots, bases, report, mask, now)
    except Exception as exc:  # a give-back goes on: report, never raise
        log.debug("file sync failed", exc_info=True)
        report.errors.append(f"file sync failed: {describe(exc)}")
        return None
    finally:
        client.close()


def _sync(
    cfg: Config,
    client: paramiko.SSHClient,
    roots: list[Root],
    bases: dict[str, Files] | None,
    report: FileSyncReport,
    mask: Masker,
    now: float,
) -> dict[str, Files]:
    """Plan and transfer root by root; the manifest's next roots (old entries where unsettled)."""
    sftp = _open_sftp(cfg, client)
    home, ts = sftp.normalize("."), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    new, problem = dict(bases or {}), None
    for root in roots:
        root.remote_dir = ft.remote_abs(root.remote_dir, home)
        base = bases.get(root.label) if bases is not None else None
        plan = _plan(sftp, root, base, ts, report)
        if report.dry_run:
            report.copied += [root.rrel(rel) for rel in plan.copy]
            report.conflicts += [(root.rrel(rel), name) for rel, name in plan.conflict.items()]
        elif plan.copy or plan.conflict:
            problem = _remote_rsync_problem(cfg, client, mask) if problem is None else problem
            if problem:
                plan.drop(set(plan.copy) | set(plan.conflict))
            else:
                try:
                    _transfer(cfg, Primary(sftp), root, plan, ts, report, mask)
                except _REMOTE_ERRORS as exc:  # the other roots still go
                    report.errors.append(f"{root.label}: {describe(exc)}")
                    plan.drop(set(plan.copy) | set(plan.conflict))
        kept = {rel: base[rel] for rel in plan.skip if base and rel in base}
        new[root.label] = {r: i for r, i in root.files.items() if r not in plan.skip} | kept
    if problem:
        report.errors.append(problem)
    return new


def _open_sftp(cfg: Config, client: paramiko.SSHClient) -> paramiko.SFTPClient:
    try:
        sftp = client.open_sftp()
    except Exception as exc:
        raise RuntimeError(
            f"no SFTP on the primary ({describe(exc)}): ocf reads the primary's files "
            "over SFTP; enable a 'Subsystem sftp' line in its sshd_config"
        ) from None
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(cfg.primary.ssh.command_timeout)
    return sftp


def _remote_rsync_problem(cfg: Config, client: paramiko.SSHClient, mask: Masker) -> str:
    """Why rsync cannot run on the primary ("" when it can); asked before writing anything."""
    timeout = cfg.primary.ssh.command_timeout
    res = remote.run_remote(cfg, ["rsync", "--version"], timeout=timeout, mask=mask, client=client)
    if res.ok:
        return ""
    if res.returncode == 127 or "not found" in res.stderr:
        return f"rsync is not installed on the primary {cfg.primary.host} (not in its PATH)"
    return f"cannot run rsync on the primary: {res.summary()}"
