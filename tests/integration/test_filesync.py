"""filesync: workspace files standby -> primary over a real sshd, rsync and SFTP.

The "primary" is another folder on this machine reached over SSH as the same
user (the harness sshd with an SFTP subsystem); the "standby" is a folder the
test writes to directly.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.syncback.files import sync as filesync
from openclaw_failover.syncback.files.sync import (
    MANIFEST_FILE,
    FileSyncReport,
    sync_files,
    take_manifest,
)
from openclaw_failover.syncback.files.tree import remote_abs
from tests.harness.sshd import SSHServer

NOW = 1796033700.0  # 2026-11-30T10:15:00Z
TS = "20261130T101500Z"
GATEWAY = "http://127.0.0.1:9/"  # never contacted here


def tree(top: Path) -> dict[str, str]:
    """Every entry below ``top``: file content, "-> target" for symlinks, "/" for folders."""
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder, name)
            rel = str(path.relative_to(top))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = "/"
            else:
                out[rel] = path.read_text()
    return out


class World:
    """A standby workspace, a primary workspace behind sshd, and the config joining them."""

    def __init__(self, tmp: Path, server: SSHServer, make_config: Callable[..., Config]) -> None:
        self.tmp = tmp
        self.standby = tmp / "standby" / "workspace"
        self.primary = tmp / "primary" / "workspace"
        self.make_config = make_config
        self.server = server
        self.cfg = self.config(server)

    def config(self, server: SSHServer, files: list[dict[str, str]] | None = None) -> Config:
        roots = files or [{"path": f"{self.standby}/", "remote_path": f"{self.primary}/"}]
        return self.make_config(server, GATEWAY, files=roots)

    def write(self, side: Path, rel: str, text: str) -> Path:
        path = side / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def both(self, rel: str, text: str) -> None:
        self.write(self.standby, rel, text)
        self.write(self.primary, rel, text)

    def sync(self, cfg: Config | None = None, **kw: Any) -> FileSyncReport:
        report = sync_files(cfg or self.cfg, mask=Masker(), now=NOW, **kw)
        assert report.summary()  # renders in every state
        return report

    @property
    def manifest(self) -> Path:
        return self.cfg.state_dir / MANIFEST_FILE


@pytest.fixture
def world(tmp_path: Path, make_sshd: Callable[..., SSHServer], make_config: Any) -> World:
    w = World(tmp_path, make_sshd(), make_config)
    w.both("MEMORY.md", "long-term v1\n")
    w.both("memory/2026-11-29.md", "yesterday v1\n")
    w.both("memory/2026-11-30.md", "today v1\n")
    take_manifest(w.cfg)
    return w


def no_leftovers(top: Path) -> None:
    assert not [p for p in tree(top) if ".ocf-replaced-" in p]


# --------------------------------------------------------------------------- the rules


def test_standby_only_change_is_copied(world: World) -> None:
    world.write(world.standby, "memory/2026-11-30.md", "today v2 (standby)\n")
    report = world.sync()
    assert report.ok, report.errors
    assert report.copied == ["memory/2026-11-30.md"]
    assert report.conflicts == [] and report.refused == []
    assert (world.primary / "memory/2026-11-30.md").read_text() == "today v2 (standby)\n"
    assert tree(world.primary) == tree(world.standby)  # nothing else written
    assert report.summary() == "files: 1 copied, 0 conflict copies, 0 refused"


def test_change_on_both_sides_keeps_primary_and_writes_conflict_copy(world: World) -> None:
    world.write(world.standby, "memory/2026-11-30.md", "standby's day\n")
    world.write(world.primary, "memory/2026-11-30.md", "primary's day\n")
    report = world.sync()
    copy = f"memory/2026-11-30.md.standby-{TS}"
    assert report.ok and report.copied == []
    assert report.conflicts == [("memory/2026-11-30.md", copy)]
    assert (world.primary / "memory/2026-11-30.md").read_text() == "primary's day\n"
    assert (world.primary / copy).read_text() == "standby's day\n"
    assert (world.standby / "memory/2026-11-30.md").read_text() == "standby's day\n"
    assert report.summary() == f"files: 0 copied, 1 conflict copy ({copy}), 0 refused"
    no_leftovers(world.primary)


def test_primary_only_change_is_left_alone(world: World) -> None:
    world.write(world.primary, "MEMORY.md", "long-term v2 (primary)\n")
    before = tree(world.primary)
    report = world.sync()
    assert report.ok and report.copied == [] and report.conflicts == []
    assert tree(world.primary) == before


def test_new_file_in_new_folder_is_copied(world: World) -> None:
    world.write(world.standby, "memory/2026/12/01.md", "new\n")
    report = world.sync()
    assert report.ok and report.copied == ["memory/2026/12/01.md"]
    assert (world.primary / "memory/2026/12/01.md").read_text() == "new\n"


def test_clock_skew_does_not_matter(world: World) -> None:
    """Decisions compare content: a changed file with an *older* mtime still goes over,
    and a primary change stamped far in the past is still a conflict."""
    path = world.write(world.standby, "MEMORY.md", "long-term v2\n")
    os.utime(path, (1_000_000, 1_000_000))  # 1970
    day = world.write(world.standby, "memory/2026-11-29.md", "standby\n")
    os.utime(day, (4_000_000_000, 4_000_000_000))  # 2096
    other = world.write(world.primary, "memory/2026-11-29.md", "primary\n")
    os.utime(other, (1_000_000, 1_000_000))
    report = world.sync()
    assert report.copied == ["MEMORY.md"]
    assert [p for p, _ in report.conflicts] == ["memory/2026-11-29.md"]
    assert (world.primary / "MEMORY.md").read_text() == "long-term v2\n"
    assert (world.primary / "memory/2026-11-29.md").read_text() == "primary\n"


def test_no_manifest_gives_conflicts_instead_of_overwrites(world: World) -> None:
    world.manifest.unlink()
    world.write(world.standby, "memory/2026-11-30.md", "standby's day\n")  # primary: v1
    world.write(world.standby, "memory/new.md", "only here\n")
    report = world.sync()
    assert report.ok
    assert report.copied == ["memory/new.md"]
    assert report.conflicts == [("memory/2026-11-30.md", f"memory/2026-11-30.md.standby-{TS}")]
    assert report.unchanged == 2  # the same on both sides
    assert (world.primary / "memory/2026-11-30.md").read_text() == "today v1\n"
    assert world.manifest.exists()  # written after the sync
    again = world.sync()
    assert again.copied == [] and again.conflicts == []


def test_unusable_manifest_counts_as_none(world: World) -> None:
    world.manifest.write_text("{broken")
    world.write(world.standby, "MEMORY.md", "standby\n")
    report = world.sync()
    assert report.conflicts == [("MEMORY.md", f"MEMORY.md.standby-{TS}")]
    assert (world.primary / "MEMORY.md").read_text() == "long-term v1\n"


# --------------------------------------------------------------------------- idempotence


def test_second_run_copies_nothing(world: World) -> None:
    world.write(world.standby, "memory/2026-11-30.md", "v2\n")
    world.write(world.standby, "MEMORY.md", "standby\n")
    world.write(world.primary, "MEMORY.md", "primary\n")
    first = world.sync()
    assert first.copied == ["memory/2026-11-30.md"] and len(first.conflicts) == 1
    after = tree(world.primary)
    second = sync_files(world.cfg, mask=Masker(), now=NOW + 3600)
    assert second.ok and second.copied == [] and second.conflicts == []
    assert second.unchanged == 3
    assert tree(world.primary) == after


def test_rerun_after_lost_manifest_update_reuses_conflict_copy(world: World) -> None:
    """A run interrupted after delivering a conflict copy must not deliver it again."""
    saved = world.manifest.read_text()
    world.write(world.standby, "MEMORY.md", "standby\n")
    world.write(world.primary, "MEMORY.md", "primary\n")
    assert len(world.sync().conflicts) == 1
    world.manifest.write_text(saved)  # as if the manifest update had not happened
    report = sync_files(world.cfg, mask=Masker(), now=NOW + 60)
    assert report.conflicts == [("MEMORY.md", f"MEMORY.md.standby-{TS}")]
    assert sorted(tree(world.primary)) == sorted([*tree(world.standby), f"MEMORY.md.standby-{TS}"])


def test_take_manifest_keeps_an_unsynced_one(world: World) -> None:
    """A second takeover before the give-back synced must not hide earlier changes."""
    world.write(world.standby, "memory/2026-11-30.md", "v2\n")
    take_manifest(world.cfg)  # e.g. a retried takeover
    report = world.sync()
    assert report.copied == ["memory/2026-11-30.md"]
    world.write(world.standby, "memory/2026-11-30.md", "v3\n")
    take_manifest(world.cfg)  # synced now: the next takeover starts afresh
    assert world.sync().copied == []


# --------------------------------------------------------------------------- dry run


def test_dry_run_writes_nothing_anywhere(world: World) -> None:
    world.write(world.standby, "memory/2026-11-30.md", "v2\n")
    world.write(world.standby, "memory/new/x.md", "new\n")
    world.write(world.standby, "MEMORY.md", "standby\n")
    world.write(world.primary, "MEMORY.md", "primary\n")
    before = (tree(world.standby), tree(world.primary), world.manifest.read_bytes())
    stamps = {p: p.stat().st_mtime_ns for p in world.primary.rglob("*")}
    report = world.sync(dry_run=True)
    assert report.ok and report.dry_run
    assert report.copied == ["memory/2026-11-30.md", "memory/new/x.md"]
    assert report.conflicts == [("MEMORY.md", f"MEMORY.md.standby-{TS}")]
    assert report.summary().startswith("files: would copy 2, would write 1 conflict copy")
    assert "would copy memory/new/x.md" in report.lines()
    assert (tree(world.standby), tree(world.primary), world.manifest.read_bytes()) == before
    assert {p: p.stat().st_mtime_ns for p in world.primary.rglob("*")} == stamps
    assert world.sync().copied == ["memory/2026-11-30.md", "memory/new/x.md"]  # still to do


# --------------------------------------------------------------------------- confinement


def test_dotdot_in_a_root_is_refused(world: World) -> None:
    escape = world.standby / "memory" / ".." / ".." / "outside"
    world.write(world.tmp / "standby", "outside/secret.md", "secret\n")
    cfg = world.config(
        world.server,
        [
            {"path": f"{escape}/", "remote_path": f"{world.primary}/x/"},
            {"path": f"{world.standby}/", "remote_path": f"{world.primary}/../evil/"},
        ],
    )
    report = world.sync(cfg)
    assert report.ok and report.copied == []
    assert [why for _, why in report.refused] == ["'..' in a configured path"] * 2
    assert not (world.primary / "x").exists() and not (world.tmp / "primary" / "evil").exists()


def test_standby_symlinks_are_not_followed(world: World) -> None:
    outside = world.write(world.tmp, "outside/secret.md", "secret\n")
    (world.standby / "memory" / "leak.md").symlink_to(outside)
    (world.standby / "memory" / "dir").symlink_to(outside.parent)
    (world.standby / "alias.md").symlink_to("MEMORY.md")  # inside: not followed either
    world.write(world.standby, "memory/2026-11-30.md", "v2\n")
    report = world.sync()
    assert report.ok and report.copied == ["memory/2026-11-30.md"]
    refused = dict(report.refused)
    assert set(refused) == {"memory/leak.md", "memory/dir", "alias.md"}
    assert "outside the root" in refused["memory/leak.md"]
    assert "outside the root" in refused["memory/dir"]
    assert "outside" not in refused["alias.md"]
    assert "secret\n" not in tree(world.primary).values()
    assert {"memory/leak.md", "memory/dir", "alias.md"}.isdisjoint(tree(world.primary))


def test_primary_symlinks_are_not_followed(world: World) -> None:
    elsewhere = world.tmp / "elsewhere"
    world.write(elsewhere, "sub/x.md", "elsewhere\n")
    target = world.write(elsewhere, "target.md", "keep me\n")
    (world.primary / "linked").symlink_to(elsewhere / "sub")  # a folder on the way
    (world.primary / "notes.md").symlink_to(target)  # the file itself
    world.write(world.standby, "linked/x.md", "standby\n")
    world.write(world.standby, "notes.md", "standby notes\n")
    world.write(world.standby, "memory/2026-11-30.md", "v2\n")
    report = world.sync()
    assert report.ok and report.copied == ["memory/2026-11-30.md"]
    refused = dict(report.refused)
    assert refused["linked/x.md"] == "linked is a symlink on the primary (not followed)"
    assert refused["notes.md"] == "a symlink on the primary (not followed)"
    assert tree(elsewhere) == {"sub": "/", "sub/x.md": "elsewhere\n", "target.md": "keep me\n"}
    assert (world.primary / "notes.md").is_symlink()
    # refused files stay pending: once the primary is fixed they go over
    (world.primary / "notes.md").unlink()
    assert world.sync().copied == ["notes.md"]


def test_awkward_names(world: World) -> None:
    names = ["memory/my notes.md", "-rf.md", "--delete", "memory/ümlaut é.md", "a'b\"c.md", "nl\nx"]
    for name in names:
        world.write(world.standby, name, f"content of {name}\n")
    report = world.sync()
    assert report.ok, report.errors
    assert sorted(report.copied) == sorted(names)
    for name in names:
        assert (world.primary / name).read_text() == f"content of {name}\n"
    assert tree(world.primary) == tree(world.standby)


def test_file_roots_and_permissions(world: World) -> None:
    private = world.write(world.standby, "MEMORY.md", "private v2\n")
    private.chmod(0o600)
    cfg = world.config(
        world.server,
        [{"path": str(private), "remote_path": f"{world.primary}/renamed/LONG.md"}],
    )
    report = world.sync(cfg)
    assert report.ok and report.copied == ["LONG.md"]
    copied = world.primary / "renamed" / "LONG.md"
    assert copied.read_text() == "private v2\n"
    assert copied.stat().st_mode & 0o077 == 0  # not readable by others on the primary
    assert (world.primary / "MEMORY.md").read_text() == "long-term v1\n"


def test_remote_path_expansion() -> None:
    assert remote_abs("~", "/home/u") == "/home/u"
    assert remote_abs("~/.openclaw/workspace/", "/home/u") == "/home/u/.openclaw/workspace"
    assert remote_abs("rel/dir", "/home/u") == "/home/u/rel/dir"
    assert remote_abs("/abs/dir/", "/home/u") == "/abs/dir"


# --------------------------------------------------------------------------- failures


def test_rsync_missing_on_the_primary(world: World, make_sshd: Callable[..., SSHServer]) -> None:
    fresh = [{"path": f"{world.standby}/", "remote_path": f"{world.tmp}/fresh/workspace/"}]
    bare = make_sshd(set_env={"PATH": "/nonexistent"})
    cfg = world.config(bare, fresh)
    world.write(world.standby, "memory/2026-11-30.md", "v2\n")
    world.write(world.standby, "memory/brand/new.md", "new\n")
    manifest = world.manifest.read_bytes()
    report = world.sync(cfg)
    assert not report.ok
    assert report.errors == [
        f"rsync is not installed on the primary {cfg.primary.host} (not in its PATH)"
    ]
    assert report.copied == [] and report.conflicts == []
    assert not (world.tmp / "fresh").exists()  # nothing half-done, not even the folder
    assert json.loads(world.manifest.read_bytes())["roots"] == json.loads(manifest)["roots"]
    again = world.sync(world.config(world.server, fresh))  # retry with rsync there
    assert again.copied == ["memory/2026-11-30.md", "memory/brand/new.md"]
    assert (world.tmp / "fresh/workspace/memory/brand/new.md").read_text() == "new\n"


def test_rsync_missing_on_the_standby(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.write(world.standby, "MEMORY.md", "v2\n")
    monkeypatch.setenv("PATH", str(world.tmp / "empty"))
    report = world.sync()
    assert report.errors == ["rsync and ssh not installed on the standby (not in PATH)"]
    assert (world.primary / "MEMORY.md").read_text() == "long-term v1\n"


def test_no_sftp_on_the_primary(world: World, make_sshd: Any) -> None:
    world.write(world.standby, "MEMORY.md", "v2\n")
    report = world.sync(world.config(make_sshd(sftp=False)))
    assert not report.ok and "no SFTP on the primary" in report.errors[0]
    assert (world.primary / "MEMORY.md").read_text() == "long-term v1\n"


def test_primary_down(world: World) -> None:
    world.write(world.standby, "MEMORY.md", "v2\n")
    world.server.stop()
    report = world.sync()
    assert not report.ok and report.errors[0].startswith("cannot reach the primary over SSH")
    world.server.start()
    assert world.sync().copied == ["MEMORY.md"]


def test_nothing_changed_needs_no_primary(world: World) -> None:
    world.server.stop()
    report = world.sync()
    assert report.ok and report.unchanged == 3 and report.copied == []


def test_standby_file_changing_during_the_sync_is_not_copied(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.write(world.standby, "MEMORY.md", "v2\n")
    real_stage = filesync.ft.stage

    def stage(root: Any, rel: str, dest: Path, want: str) -> int:
        (world.standby / rel).write_text("v3, written meanwhile\n")
        return real_stage(root, rel, dest, want)

    monkeypatch.setattr(filesync.ft, "stage", stage)
    report = world.sync()
    assert report.errors == ["MEMORY.md: changed during the sync on the standby; not copied"]
    assert (world.primary / "MEMORY.md").read_text() == "long-term v1\n"
    monkeypatch.undo()
    assert world.sync().copied == ["MEMORY.md"]  # still pending, goes next time


def test_primary_writing_during_the_transfer_loses_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked unchanged on the primary, then written there before rsync replaced it:
    the primary's new version is put back and the standby's becomes a conflict copy."""
    world.write(world.standby, "memory/2026-11-30.md", "standby v2\n")
    real_run = filesync.run

    def racing_run(argv: Any, **kw: Any) -> Any:
        world.write(world.primary, "memory/2026-11-30.md", "primary wrote meanwhile\n")
        return real_run(argv, **kw)

    monkeypatch.setattr(filesync, "run", racing_run)
    report = world.sync()
    copy = f"memory/2026-11-30.md.standby-{TS}"
    assert report.copied == [] and report.conflicts == [("memory/2026-11-30.md", copy)]
    assert (world.primary / "memory/2026-11-30.md").read_text() == "primary wrote meanwhile\n"
    assert (world.primary / copy).read_text() == "standby v2\n"
    no_leftovers(world.primary)


def test_rsync_failure_is_reported_and_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.write(world.standby, "MEMORY.md", "v2\n")
    real_run = filesync.run
    monkeypatch.setattr(filesync, "run", lambda argv, **kw: real_run(["false"], **kw))
    report = world.sync()
    assert not report.ok and report.errors[0].startswith("rsync to the primary failed")
    assert report.copied == []
    monkeypatch.undo()
    assert world.sync().copied == ["MEMORY.md"]


def test_report_summary_and_lines() -> None:
    r = FileSyncReport(
        copied=["a", "b", "c"],
        conflicts=[("memory/2026-11-30.md", f"memory/2026-11-30.md.standby-{TS}")],
        refused=[("x", "symlink")],
        errors=["boom"],
    )
    assert r.summary() == (
        f"files: 3 copied, 1 conflict copy (memory/2026-11-30.md.standby-{TS}), 1 refused; "
        "1 error: boom"
    )
    assert not r.ok and "refused x: symlink" in r.lines()
    assert FileSyncReport(dry_run=True).summary() == (
        "files: would copy 0, would write 0 conflict copies, 0 refused"
    )


def test_manifest_is_written_atomically_with_the_takeover_time(world: World) -> None:
    data = json.loads(world.manifest.read_text())
    assert data["version"] == 1 and data["synced"] is False
    assert abs(data["taken_at"] - time.time()) < 60
    files = data["roots"][str(world.standby)]
    assert set(files) == {"MEMORY.md", "memory/2026-11-29.md", "memory/2026-11-30.md"}
    assert files["MEMORY.md"][0] == len("long-term v1\n")
    assert not [p for p in world.manifest.parent.iterdir() if p.name.endswith(".tmp")]
    shutil.rmtree(world.cfg.state_dir)
    assert take_manifest(world.cfg).exists()  # makes the state folder


def test_key_and_known_hosts_paths_with_spaces_and_percent(world: World) -> None:
    """rsync's ssh gets the same key and known_hosts as the probe, whatever their names."""
    odd = world.tmp / "my keys %d 'x' \"y\" \\z ~"
    odd.mkdir()
    key = Path(shutil.copy(world.server.client_key, odd / "client key"))
    key.chmod(0o600)
    known = Path(shutil.copy(world.server.known_hosts, odd / "known hosts"))
    roots = [{"path": f"{world.standby}/", "remote_path": f"{world.primary}/"}]
    ssh = {"key_file": str(key), "known_hosts": str(known)}
    cfg = world.make_config(world.server, GATEWAY, primary={"ssh": ssh}, files=roots)
    world.write(world.standby, "MEMORY.md", "v2\n")
    report = world.sync(cfg)
    assert report.ok, report.errors
    assert report.copied == ["MEMORY.md"]
    assert (world.primary / "MEMORY.md").read_text() == "v2\n"


def test_unchanged_give_back_marks_the_manifest_synced(world: World) -> None:
    world.server.stop()  # not needed: nothing changed
    assert world.sync().ok
    assert json.loads(world.manifest.read_text())["synced"] is True
