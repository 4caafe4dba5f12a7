"""`ocf doctor` against real parts: OpenSSH sshd, two PostgreSQL clusters with logical
replication, the fake Bot API through python-telegram-bot, fake systemctl/crontab
scripts on PATH, real files with real modes.

Each check has a passing and a failing test.  Groups a test does not look at still
run (the doctor always runs all of them); they point at a closed port so they
fail fast.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.config.loader import Config, load_config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.core.state import Role, State
from openclaw_failover.engine.store import StateStore
from openclaw_failover.monitor.replstatus import replication_health
from openclaw_failover.ops.doctor import base as doctor_base
from openclaw_failover.ops.doctor import db as doctor_db
from openclaw_failover.ops.doctor import local as doctor_local
from openclaw_failover.ops.doctor import run as doctor
from openclaw_failover.ops.doctor import telegram as doctor_telegram
from openclaw_failover.ops.doctor.run import Check, DoctorReport, run_doctor
from tests.harness.fake_telegram import FakeTelegram, _chat, _error
from tests.harness.fixtures import config_dict
from tests.harness.pg import MemuPair
from tests.harness.sshd import FakeGateway, SSHServer, free_port

pytestmark = pytest.mark.integration
TOKEN = "987654321:AAdoctorSecretToken_abcdefghijklmnop"
PASSWORD = "pg-Secret-pw-4711"
NOW = 1_800_000_000.0
PAIRS = ["pg18", "pg15", "mixed"]


# --------------------------------------------------------------------------- helpers


def checks(report: DoctorReport, name: str) -> list[Check]:
    return [c for c in report.checks if c.name == name]


def one(report: DoctorReport, name: str, text: str) -> Check:
    """The single check of group ``name`` whose detail contains ``text``."""
    found = [c for c in checks(report, name) if text in c.detail]
    assert len(found) == 1, f"{text!r} in {name}:\n{report.render()}"
    return found[0]


def statuses(report: DoctorReport, name: str) -> list[str]:
    return [c.status for c in checks(report, name)]


def assert_no_secret(report: DoctorReport, *secrets: str) -> None:
    import json

    for text in (report.render(), json.dumps(report.to_json())):
        for secret in secrets:
            assert secret not in text


def write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def no_system_cron(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The schedule checks read cron files under the test's directory, never /etc."""
    cron_d = tmp_path / "cron.d"
    cron_d.mkdir()
    monkeypatch.setattr(doctor_local, "CRON_FILES", (str(cron_d / "*"),))
    return cron_d


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment `ocf doctor` runs with: fake programs first on PATH."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    return {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path)}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("# the config this doctor run checks\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def doc(env: dict[str, str], config_file: Path) -> Callable[..., DoctorReport]:
    def run(cfg: Config, **kw: Any) -> DoctorReport:
        kw.setdefault("env", env)
        kw.setdefault("config_path", config_file)
        kw.setdefault("now", NOW)
        return run_doctor(cfg, **kw)

    return run


@pytest.fixture
def offline(make_config: Callable[..., Config]) -> Callable[..., Config]:
    """A config whose primary's SSH port is closed (the ssh group fails at once)."""

    def make(**sections: Any) -> Config:
        return make_config(free_port(), "http://127.0.0.1:9/", **sections)

    return make


def save_state(cfg: Config, **fields: Any) -> None:
    StateStore(cfg.state_dir).save(State(**fields))


# --------------------------------------------------------------------------- report


def test_render_one_line_per_check_with_fix_only_when_not_ok() -> None:
    report = DoctorReport(
        [
            Check("ssh", "ok", "host key for [h]:22 matches known_hosts", "never shown"),
            Check(
                "database",
                "FAIL",
                "wal_level is replica on the primary",
                "ALTER SYSTEM SET wal_level = logical; restart PostgreSQL",
            ),
            Check("telegram", "skip", "no telegram: section"),
        ]
    )
    assert report.render().splitlines() == [
        "ok    ssh: host key for [h]:22 matches known_hosts",
        "FAIL  database: wal_level is replica on the primary \u2014 fix: "
        "ALTER SYSTEM SET wal_level = logical; restart PostgreSQL",
        "skip  telegram: no telegram: section",
    ]
    assert not report.ok
    data = report.to_json()
    assert data["ok"] is False
    assert data["counts"] == {"ok": 1, "warn": 0, "FAIL": 1, "skip": 1}
    assert data["checks"][1]["fix"].startswith("ALTER SYSTEM")
    assert report.summary() == "1 FAIL, 1 ok, 1 skipped"
    assert DoctorReport([Check("x", "warn", "w", "f")]).ok


def test_groups_come_in_order_and_a_crash_stays_in_its_group(
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(ctx: doctor.DoctorContext, out: doctor.Sink) -> None:
        out.ok("first part fine")
        raise RuntimeError(f"exploded near {TOKEN}")

    monkeypatch.setattr(doctor_telegram, "check_telegram", boom)
    report = doc(offline(telegram={"token": TOKEN, "chat_id": 42}))
    names = list(dict.fromkeys(c.name for c in report.checks))
    assert names == [
        "config",
        "ssh",
        "gateway",
        "openclaw",
        "database",
        "rsync",
        "telegram",
        "schedule",
        "witnesses",
        "monitoring",
    ]
    assert statuses(report, "telegram") == ["ok", "FAIL"]
    crashed = one(report, "telegram", "check crashed: RuntimeError")
    assert "report it" in crashed.fix
    assert checks(report, "schedule"), "the groups after the crash still ran"
    assert_no_secret(report, TOKEN)


def test_a_hanging_group_times_out_and_the_others_still_report(
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_groups = doctor.groups

    def hang(ctx: doctor.DoctorContext, out: doctor.Sink) -> None:
        out.ok("before the hang")
        time.sleep(5)
        out.ok("after the budget: must not appear")

    def groups(ctx: doctor.DoctorContext) -> list[tuple[str, doctor.GroupFn, float]]:
        found = real_groups(ctx)
        return [(n, hang, 0.5) if n == "gateway" else (n, f, b) for n, f, b in found]

    monkeypatch.setattr(doctor, "groups", groups)
    t0 = time.monotonic()
    report = doc(offline())
    assert time.monotonic() - t0 < 4
    assert statuses(report, "gateway") == ["ok", "FAIL"]
    assert "did not finish within 0.5s" in checks(report, "gateway")[1].detail
    assert checks(report, "config") and checks(report, "schedule")


# --------------------------------------------------------------------------- config


def write_config(path: Path, document: dict[str, Any], mode: int) -> Path:
    path.write_text(yaml.safe_dump(document))
    path.chmod(mode)
    return path


def base_document(sshd: SSHServer, tmp_path: Path) -> dict[str, Any]:
    return config_dict(
        port=sshd.port,
        user=sshd.user,
        key_file=sshd.client_key,
        known_hosts=sshd.known_hosts,
        health_url="http://127.0.0.1:9/",
        state_dir=tmp_path / "state",
    )


def test_config_with_a_literal_token_readable_by_others_warns_with_the_chmod(
    sshd: SSHServer, tmp_path: Path, doc: Callable[..., DoctorReport]
) -> None:
    document = base_document(sshd, tmp_path) | {"telegram": {"token": TOKEN, "chat_id": 1}}
    path = write_config(tmp_path / "open.yaml", document, 0o644)
    report = doc(load_config(path, env={}), config_path=path)
    assert one(report, "config", "config valid").status == "ok"
    warn = one(report, "config", "holds a secret")
    assert warn.status == "warn"
    assert "mode 0644" in warn.detail
    assert warn.fix == f"chmod 600 {path}"
    assert_no_secret(report, TOKEN)

    path.chmod(0o600)
    report = doc(load_config(path, env={}), config_path=path)
    assert one(report, "config", "holds a secret").status == "ok"


def test_config_with_the_token_from_the_environment_may_be_0644(
    sshd: SSHServer, tmp_path: Path, doc: Callable[..., DoctorReport]
) -> None:
    document = base_document(sshd, tmp_path)
    document["telegram"] = {"token": "${OCF_TELEGRAM_TOKEN}", "chat_id": 1}
    path = write_config(tmp_path / "fine.yaml", document, 0o644)
    report = doc(load_config(path, env={"OCF_TELEGRAM_TOKEN": TOKEN}), config_path=path)
    assert statuses(report, "config") == ["ok", "ok"]  # valid, SSH key private
    assert_no_secret(report, TOKEN)


def test_key_file_open_to_others_warns_and_fails_when_rsync_needs_it(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport], tmp_path: Path
) -> None:
    cfg = offline()
    key = cfg.primary.ssh.key_file
    assert one(doc(cfg), "config", "SSH key").status == "ok"
    key.chmod(0o644)
    check = one(doc(cfg), "config", "SSH private key")
    assert (check.status, check.fix) == ("warn", f"chmod 600 {key}")
    with_files = offline(files=[{"path": str(tmp_path), "remote_path": "~/ws"}])
    check = one(doc(with_files), "config", "SSH private key")
    assert check.status == "FAIL" and "OpenSSH refuses it" in check.detail


# --------------------------------------------------------------------------- ssh


def test_ssh_all_good_and_the_stop_command_is_never_run(
    make_config: Callable[..., Config],
    sshd: SSHServer,
    doc: Callable[..., DoctorReport],
    tmp_path: Path,
) -> None:
    marker = tmp_path / "stop-was-run"
    stop = write_script(tmp_path / "remote" / "stop-gateway", f"touch {marker}\n")
    cfg = make_config(
        primary={"gateway": {"stop_command": [str(stop)], "start_command": "sleep 0"}}
    )
    report = doc(cfg)
    assert statuses(report, "ssh") == ["ok"] * 6, report.render()
    host = one(report, "ssh", "host key for")
    assert f"[127.0.0.1]:{sshd.port}" in host.detail and "SHA256:" in host.detail
    assert "direct-tcpip" in one(report, "ssh", "health URL").detail
    assert "curl on the primary: /" in one(report, "ssh", "curl").detail
    assert f"{stop} exists on the primary (not run)" in one(report, "ssh", "stop_command").detail
    assert "sleep resolves to /" in one(report, "ssh", "start_command").detail
    assert not marker.exists()


def test_ssh_rotated_host_key_fails_with_the_known_hosts_fix(
    make_config: Callable[..., Config], sshd: SSHServer, doc: Callable[..., DoctorReport]
) -> None:
    cfg = make_config()
    sshd.rotate_host_key()
    report = doc(cfg)
    assert statuses(report, "ssh") == ["FAIL", "skip"]
    check = checks(report, "ssh")[0]
    assert "host key CHANGED" in check.detail
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {sshd.known_hosts}" in check.fix


def test_ssh_unknown_host_key_fails_with_keyscan(
    make_config: Callable[..., Config], doc: Callable[..., DoctorReport], tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts.empty"
    empty.touch()
    report = doc(make_config(primary={"ssh": {"known_hosts": str(empty)}}))
    check = checks(report, "ssh")[0]
    assert check.status == "FAIL" and "host key unknown" in check.detail
    assert "ssh-keyscan -p" in check.fix


def test_ssh_unauthorized_key_fails_after_the_host_key_passed(
    make_config: Callable[..., Config], sshd: SSHServer, doc: Callable[..., DoctorReport]
) -> None:
    stranger = sshd.make_client_key("stranger", authorize=False)
    report = doc(make_config(primary={"ssh": {"key_file": str(stranger)}}))
    assert statuses(report, "ssh") == ["ok", "FAIL", "skip"]
    assert "matches known_hosts" in checks(report, "ssh")[0].detail
    rejected = checks(report, "ssh")[1]
    assert "key rejected" in rejected.detail
    assert f"ssh-copy-id -i {stranger}.pub" in rejected.fix


def test_ssh_closed_port_fails_as_unreachable(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    report = doc(offline())
    check = checks(report, "ssh")[0]
    assert check.status == "FAIL" and check.detail.startswith("cannot reach the primary")
    assert "nc -vz 127.0.0.1" in check.fix


def test_ssh_forwarding_refused_and_no_curl_fails_both(
    make_sshd: Callable[..., SSHServer],
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    doc: Callable[..., DoctorReport],
) -> None:
    srv = make_sshd(allow_tcp_forwarding=False, set_env={"PATH": "/nonexistent"})
    report = doc(make_config(srv, fake_gateway))
    health = one(report, "ssh", "health URL")
    assert health.status == "FAIL" and "probe_error" in health.detail
    assert "AllowTcpForwarding" in health.fix
    curl = one(report, "ssh", "curl not found")
    assert curl.status == "FAIL" and "forwarding is refused" in curl.detail


def test_ssh_no_curl_with_forwarding_is_only_a_warning(
    make_sshd: Callable[..., SSHServer],
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    doc: Callable[..., DoctorReport],
) -> None:
    srv = make_sshd(set_env={"PATH": "/nonexistent"})
    report = doc(make_config(srv, fake_gateway))
    assert one(report, "ssh", "health URL").status == "ok"
    assert one(report, "ssh", "curl not found").status == "warn"


def test_ssh_forwarding_refused_with_curl_warns(
    make_sshd: Callable[..., SSHServer],
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    doc: Callable[..., DoctorReport],
) -> None:
    srv = make_sshd(allow_tcp_forwarding=False)
    report = doc(make_config(srv, fake_gateway))
    health = one(report, "ssh", "health URL")
    assert health.status == "warn" and "only through curl" in health.detail
    assert one(report, "ssh", "curl on the primary").status == "ok"


def test_ssh_gateway_down_fails_but_is_expected_while_serving(
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    doc: Callable[..., DoctorReport],
) -> None:
    cfg = make_config()
    fake_gateway.status = 503
    health = one(doc(cfg), "ssh", "health URL")
    assert health.status == "FAIL" and "gateway_down" in health.detail
    save_state(cfg, role=Role.FAILOVER, since=NOW - 60, last_tick_at=NOW - 10)
    assert one(doc(cfg), "ssh", "health URL").status == "warn"


def test_fencing_program_missing_on_the_primary_fails_and_none_warns(
    make_config: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    cfg = make_config(primary={"gateway": {"stop_command": "openclaw-no-such-stopper now"}})
    report = doc(cfg)
    stop = one(report, "ssh", "stop_command")
    assert stop.status == "FAIL" and "openclaw-no-such-stopper is not found" in stop.detail
    assert "full path in primary.gateway.stop_command" in stop.fix
    assert one(report, "ssh", "no primary.gateway.start_command").status == "warn"
    fence = one(doc(make_config()), "ssh", "no primary.gateway.stop_command")
    assert fence.status == "warn" and "systemctl --user stop" in fence.fix


# --------------------------------------------------------------------------- local gateway

SYSTEMCTL = """\
env > "{record}"
bus="{bus}"
case "$DBUS_SESSION_BUS_ADDRESS" in
  "unix:path=$bus") exit 0 ;;
esac
echo "Failed to connect to bus: No such file or directory" >&2
exit 1
"""


def test_local_commands_resolve_or_fail_with_the_fix(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    report = doc(offline())
    assert one(report, "gateway", "start_command: true").status == "ok"
    assert one(report, "gateway", "stop_command: true").status == "ok"
    assert one(report, "gateway", "is not systemctl").status == "skip"
    cfg = offline(standby={"gateway": {"start_command": "openclaw-no-such-gateway start"}})
    check = one(doc(cfg), "gateway", "standby.gateway.start_command")
    assert check.status == "FAIL" and "openclaw-no-such-gateway not found" in check.detail
    assert "full path in standby.gateway.start_command" in check.fix


def test_systemctl_user_unreachable_from_cron_fails_with_linger(
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    # From "this shell" the user bus works (a real socket, named in the env);
    # from cron's bare environment ocf can only guess /run/user/UID/bus.
    bus = tmp_path / "bus"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(bus))
        record = tmp_path / "systemctl.env"
        write_script(tmp_path / "bin" / "systemctl", SYSTEMCTL.format(record=record, bus=bus))
        env |= {
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus}",
            "XDG_RUNTIME_DIR": str(tmp_path),
            "OCF_TEST_LEAK": "1",
        }
        cfg = offline(
            standby={"gateway": {"start_command": "systemctl --user start openclaw-gateway"}}
        )
        check = one(doc(cfg, env=env), "gateway", "systemctl --user")
    assert check.status == "FAIL"
    assert "Failed to connect to bus" in check.detail
    assert "works from this shell's environment" in check.detail
    assert check.fix.startswith("loginctl enable-linger ")
    assert "XDG_RUNTIME_DIR" in check.fix


def test_systemctl_user_is_run_with_cron_env_plus_what_ocf_fills_in(
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    record = tmp_path / "systemctl.env"
    write_script(
        tmp_path / "bin" / "systemctl",
        f'[ "$2" = show-environment ] && env > "{record}"\n'
        '[ -n "$DBUS_SESSION_BUS_ADDRESS" ] || '
        '{ echo "Failed to connect to bus: $$" >&2; exit 1; }\n',
    )
    env |= {"OCF_TEST_LEAK": "1"}
    cfg = offline(standby={"gateway": {"start_command": "systemctl --user start openclaw-gateway"}})
    check = one(doc(cfg, env=env), "gateway", "systemctl --user")
    assert check.status == "ok", check
    seen = dict(line.split("=", 1) for line in record.read_text().splitlines() if "=" in line)
    uid = os.getuid()
    assert seen["PATH"] == "/usr/bin:/bin"
    assert seen["XDG_RUNTIME_DIR"] == f"/run/user/{uid}"
    assert seen["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path=/run/user/{uid}/bus"
    assert "OCF_TEST_LEAK" not in seen


# --------------------------------------------------------------------------- database


def db_config(offline: Callable[..., Config], pair: MemuPair, **db: Any) -> Config:
    return offline(
        database={
            "primary_dsn": pair.primary.dsn(),
            "standby_dsn": pair.standby.dsn(),
            "connect_timeout": 3,
            **db,
        }
    )


@pytest.mark.parametrize("memu_pair", PAIRS, indirect=True)
def test_database_healthy_pair(
    memu_pair: MemuPair, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    report = doc(db_config(offline, memu_pair))
    db = checks(report, "database")
    assert "FAIL" not in statuses(report, "database"), report.render()
    version = memu_pair.primary.major
    assert f"primary database reachable: PostgreSQL {version}." in db[0].detail
    assert one(report, "database", "wal_level is logical").status == "ok"
    assert one(report, "database", "publication memu_pub carries 5 tables").status == "ok"
    assert one(report, "database", "is enabled, apply worker pid").status == "ok"
    assert one(report, "database", "is active on the primary").status == "ok"
    assert one(report, "database", "replication lag").status == "ok"
    origin = one(report, "database", "origin")
    if min(memu_pair.primary.major, memu_pair.standby.major) >= 16:
        assert origin.status == "warn" and "SET (origin = none)" in origin.fix
    else:
        assert origin.status == "skip"
    errors = one(report, "database", "apply errors")
    assert errors.status == ("ok" if memu_pair.standby.major >= 15 else "skip")


def test_database_origin_none_passes(
    pg18_pair: MemuPair, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    # Changing an option restarts the apply worker: the doctor waits for it, no false FAIL.
    pg18_pair.standby.execute("ALTER SUBSCRIPTION memu_sub SET (origin = none)")
    report = doc(db_config(offline, pg18_pair))
    assert one(report, "database", "origin = none").status == "ok"
    assert statuses(report, "database") == ["ok"] * 9, report.render()


def test_database_subscription_on_a_missing_slot_fails(
    pg18_pair: MemuPair,
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor_db, "SETTLE_SECONDS", 1.0)
    for statement in (
        "ALTER SUBSCRIPTION memu_sub DISABLE",
        "ALTER SUBSCRIPTION memu_sub SET (slot_name = 'gone')",
        "ALTER SUBSCRIPTION memu_sub ENABLE",
    ):
        pg18_pair.standby.execute(statement)
    report = doc(db_config(offline, pg18_pair))
    check = one(report, "database", "replication slot gone")
    assert check.status == "FAIL" and "does not exist on the primary" in check.detail
    assert "ocf syncback" in check.fix


def wait_slot_inactive(pair: MemuPair) -> None:
    deadline = time.monotonic() + 15
    while pair.primary.scalar(
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'memu_sub'"
    ):
        assert time.monotonic() < deadline, "slot still active"
        time.sleep(0.05)


def test_database_disabled_subscription_fails_unless_serving(
    pg18_pair: MemuPair, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    cfg = db_config(offline, pg18_pair)
    pg18_pair.standby.execute("ALTER SUBSCRIPTION memu_sub DISABLE")
    wait_slot_inactive(pg18_pair)
    report = doc(cfg)
    sub = one(report, "database", "subscription memu_sub is disabled")
    assert sub.status == "FAIL" and "ocf syncback" in sub.fix
    assert one(report, "database", "replication slot memu_sub").status == "FAIL"

    save_state(cfg, role=Role.FAILOVER, since=NOW - 60, last_tick_at=NOW - 10)
    report = doc(cfg)
    sub = one(report, "database", "subscription memu_sub is disabled")
    assert sub.status == "warn" and "on purpose" in sub.detail
    assert one(report, "database", "replication slot memu_sub").status == "warn"
    assert one(report, "database", "replication lag").status == "skip"


def test_database_missing_publication_fails(
    pg18_pair: MemuPair, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    pg18_pair.primary.execute("DROP PUBLICATION memu_pub")
    check = one(doc(db_config(offline, pg18_pair)), "database", "publication")
    assert check.status == "FAIL" and "memu_pub" in check.detail
    assert check.fix == "on the primary: CREATE PUBLICATION memu_pub FOR ALL TABLES"


def test_database_configured_table_not_published_fails(
    pg18_pair: MemuPair, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    pg18_pair.primary.execute("DROP PUBLICATION memu_pub")
    pg18_pair.primary.execute("CREATE PUBLICATION memu_pub FOR TABLE memory_items")
    cfg = db_config(offline, pg18_pair, tables=["memory_items", "resources"])
    check = one(doc(cfg), "database", "publication")
    assert check.status == "FAIL" and "but not public.resources" in check.detail
    assert check.fix == "on the primary: ALTER PUBLICATION memu_pub ADD TABLE public.resources"


def test_database_wal_level_replica_fails_with_the_exact_fix(
    memu_pair_factory: Callable[..., MemuPair],
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
) -> None:
    pair = memu_pair_factory(settings={"wal_level": "replica"}, subscribe=False)
    report = doc(db_config(offline, pair))
    wal = one(report, "database", "wal_level")
    assert wal.line() == (
        "FAIL  database: wal_level is replica on the primary \u2014 fix: "
        "ALTER SYSTEM SET wal_level = logical; restart PostgreSQL"
    )
    missing = one(report, "database", "subscription memu_sub does not exist")
    assert missing.status == "FAIL" and "CREATE SUBSCRIPTION memu_sub" in missing.fix


def test_database_apply_errors_fail(
    pg18_pair: MemuPair, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    pg18_pair.standby.execute("INSERT INTO alembic_version VALUES ('conflict')")
    pg18_pair.primary.execute("INSERT INTO alembic_version VALUES ('conflict')")
    deadline = time.monotonic() + 20
    while pg18_pair.apply_error_count() == 0:
        assert time.monotonic() < deadline, pg18_pair.diagnostics()
        time.sleep(0.1)
    check = one(doc(db_config(offline, pg18_pair)), "database", "apply/sync errors")
    assert check.status == "FAIL" and "ocf syncback" in check.fix


def test_database_lag_above_the_threshold_warns(
    pg18_pair: MemuPair,
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(doctor_db, "LAG_WARN_BYTES", -1)
    check = one(doc(db_config(offline, pg18_pair)), "database", "replication lag")
    assert check.status == "warn" and "a takeover now would miss" in check.detail


def test_database_unreachable_fails_and_never_shows_the_password(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    dsn = f"host=127.0.0.1 port={free_port()} dbname=memu user=postgres password={PASSWORD}"
    cfg = offline(database={"primary_dsn": dsn, "standby_dsn": dsn, "connect_timeout": 2})
    report = doc(cfg)
    primary = one(report, "database", "cannot connect to the primary")
    assert primary.status == "FAIL" and "database.primary_dsn" in primary.fix
    assert_no_secret(report, PASSWORD)


def test_replication_health_for_status(pg18_pair: MemuPair, offline: Callable[..., Config]) -> None:
    health = replication_health(db_config(offline, pg18_pair))
    assert "error" not in health, health
    assert health["enabled"] is True and health["worker_running"] is True
    assert health["slot"] == "memu_sub" and health["slot_active"] is True
    assert health["apply_errors"] == 0 and health["origin"] == "any"
    assert isinstance(health["lag_bytes"], int) and health["lag_bytes"] >= 0
    assert health["primary_version"].startswith("18.")
    assert replication_health(db_config(offline, pg18_pair))["enabled"] is True

    pg18_pair.primary.stop()
    partial = replication_health(db_config(offline, pg18_pair))
    assert partial["enabled"] is True and partial["slot_active"] is None
    assert partial["error"].startswith("primary database:")


def test_replication_health_never_raises_and_is_fast(offline: Callable[..., Config]) -> None:
    dsn = f"host=127.0.0.1 port={free_port()} dbname=memu user=postgres password={PASSWORD}"
    t0 = time.monotonic()
    health = replication_health(offline(database={"primary_dsn": dsn, "standby_dsn": dsn}))
    assert time.monotonic() - t0 < 5
    assert list(health) == ["error"] and PASSWORD not in health["error"]
    # libpq's two lines stay apart: "... Connection refused; Is the server running ..."
    assert "Connection refused; Is the server running" in health["error"], health
    assert replication_health(offline()) == {"error": "no database: section in the config"}


# --------------------------------------------------------------------------- rsync


def files_section(tmp_path: Path) -> list[dict[str, str]]:
    (tmp_path / "workspace").mkdir(exist_ok=True)
    return [{"path": str(tmp_path / "workspace"), "remote_path": str(tmp_path / "remote-ws")}]


def test_rsync_on_both_ends_and_sftp(
    make_config: Callable[..., Config], doc: Callable[..., DoctorReport], tmp_path: Path
) -> None:
    report = doc(make_config(files=files_section(tmp_path)))
    assert statuses(report, "rsync") == ["ok", "ok", "ok"], report.render()
    assert one(report, "rsync", "rsync on the primary: /").status == "ok"


def test_rsync_missing_on_the_primary_fails(
    make_sshd: Callable[..., SSHServer],
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    doc: Callable[..., DoctorReport],
    tmp_path: Path,
) -> None:
    only_curl = tmp_path / "primary-bin"
    only_curl.mkdir()
    (only_curl / "curl").symlink_to("/usr/bin/curl")
    srv = make_sshd(set_env={"PATH": str(only_curl)})
    report = doc(make_config(srv, fake_gateway, files=files_section(tmp_path)))
    check = one(report, "rsync", "rsync not found on the primary")
    assert check.status == "FAIL" and "install rsync on the primary" in check.fix
    assert one(report, "ssh", "curl on the primary").status == "ok"


def test_rsync_missing_here_and_sftp_refused_fail(
    make_sshd: Callable[..., SSHServer],
    make_config: Callable[..., Config],
    fake_gateway: FakeGateway,
    doc: Callable[..., DoctorReport],
    tmp_path: Path,
) -> None:
    srv = make_sshd(sftp=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    report = doc(
        make_config(srv, fake_gateway, files=files_section(tmp_path)), env={"PATH": str(empty)}
    )
    local = one(report, "rsync", "not found on this standby")
    assert local.status == "FAIL" and local.fix == "apt-get install rsync openssh-client"
    assert one(report, "rsync", "SFTP").status == "FAIL"


def test_rsync_skipped_without_files(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    assert statuses(doc(offline()), "rsync") == ["skip"]


# --------------------------------------------------------------------------- telegram


class BotAPI(FakeTelegram):
    """The fake Bot API plus getChat (doctor asks whether the chat is reachable)."""

    def _decide(self, token: str, method: str, params: dict[str, str]) -> tuple[int, Any]:
        healthy = not self._mode.fail_status and not self._mode.rate_count
        if method.lower() != "getchat" or not healthy or token != self.valid_token:
            return super()._decide(token, method, params)
        raw = params.get("chat_id", "")
        chat_id: int | str = int(raw) if raw.lstrip("-").isdigit() else raw
        if self.chats is not None and chat_id not in self.chats:
            return 400, _error(400, "Bad Request: chat not found")
        gifts = dict.fromkeys(
            (
                "unlimited_gifts",
                "limited_gifts",
                "unique_gifts",
                "premium_subscription",
                "gifts_from_channels",
            ),
            False,
        )
        full = {**_chat(chat_id), "accent_color_id": 0, "max_reaction_count": 11}
        return 200, {"ok": True, "result": {**full, "accepted_gift_types": gifts}}


@pytest.fixture
def bot_api() -> Iterator[BotAPI]:
    api = BotAPI(valid_token=TOKEN, chats={42})
    api.start()
    try:
        yield api
    finally:
        api.stop()


def tg_section(api: BotAPI, chat_id: int = 42) -> Mapping[str, Any]:
    return {"token": TOKEN, "chat_id": chat_id, "base_url": api.base_url, "timeout": 5}


def test_telegram_valid_token_and_chat_and_test_message(
    bot_api: BotAPI, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    cfg = offline(telegram=tg_section(bot_api))
    report = doc(cfg)
    assert statuses(report, "telegram") == ["ok", "ok", "skip"]
    assert "bot @fake_ocf_bot" in checks(report, "telegram")[0].detail
    assert bot_api.messages == []
    report = doc(cfg, send_test=True)
    assert statuses(report, "telegram") == ["ok", "ok", "ok"]
    assert len(bot_api.messages) == 1 and "ocf doctor: test message" in bot_api.texts[0]
    assert_no_secret(report, TOKEN)


def test_telegram_rejected_token_fails_without_showing_it(
    bot_api: BotAPI, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    bot_api.fail_with(401, description="Unauthorized")
    report = doc(offline(telegram=tg_section(bot_api)), send_test=True)
    assert statuses(report, "telegram") == ["FAIL", "skip"]
    check = checks(report, "telegram")[0]
    assert "token rejected" in check.detail and "telegram.token" in check.fix
    assert bot_api.messages == []
    assert_no_secret(report, TOKEN)


def test_telegram_unknown_chat_fails(
    bot_api: BotAPI, offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    report = doc(offline(telegram=tg_section(bot_api, chat_id=99)), send_test=True)
    assert statuses(report, "telegram") == ["ok", "FAIL"]
    check = checks(report, "telegram")[1]
    assert "chat 99 not reachable" in check.detail and "/start" in check.fix
    assert bot_api.messages == []


def test_telegram_api_without_get_chat_warns_and_send_test_still_checks_the_chat(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    with FakeTelegram(valid_token=TOKEN) as plain:  # getMe and sendMessage only
        cfg = offline(telegram={"token": TOKEN, "chat_id": 42, "base_url": plain.base_url})
        report = doc(cfg, send_test=True)
        assert statuses(report, "telegram") == ["ok", "warn", "ok"]
        assert "does not answer getChat" in checks(report, "telegram")[1].detail
        assert plain.texts and "test message" in plain.texts[0]
    assert_no_secret(report, TOKEN)


def test_telegram_not_configured_is_skipped(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    assert statuses(doc(offline()), "telegram") == ["skip"]


# --------------------------------------------------------------------------- schedule


def test_schedule_missing_fails_then_cron_d_entry_passes(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport], no_system_cron: Path
) -> None:
    cfg = offline()
    save_state(cfg, last_tick_at=NOW - 30)
    missing = checks(doc(cfg), "schedule")[0]
    assert missing.status == "FAIL" and "no schedule" in missing.detail
    assert missing.fix.startswith("ocf install cron")
    save_state(cfg)  # a fresh setup: no check has run yet
    fresh = checks(doc(cfg), "schedule")
    assert (fresh[0].status, fresh[0].detail) == ("warn", "not installed yet (step 6)")
    assert fresh[1].status == "skip"
    save_state(cfg, last_tick_at=NOW - 30)
    (no_system_cron / "other").write_text("# */2 * * * * pi ocf check\n")
    assert checks(doc(cfg), "schedule")[0].status == "FAIL"  # a comment does not count
    entry = no_system_cron / "openclaw-failover"
    entry.write_text("SHELL=/bin/sh\n*/2 * * * * pi set -a; . /home/pi/env; set +a; ocf check\n")
    found = checks(doc(cfg), "schedule")[0]
    assert (found.status, found.detail) == ("ok", f"cron runs ocf check: {entry}")


def test_schedule_user_crontab_and_systemd_timer(
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    cfg = offline()
    save_state(cfg, last_tick_at=NOW - 30)
    crontab = write_script(tmp_path / "bin" / "crontab", 'echo "*/2 * * * * ocf -c /x check"\n')
    assert one(doc(cfg), "schedule", "cron runs").detail == "cron runs ocf check: crontab -l"
    crontab.unlink()
    write_script(
        tmp_path / "bin" / "systemctl",
        'case "$2" in is-enabled) echo enabled ;; is-active) echo inactive; exit 3 ;; esac\n',
    )
    timer = one(doc(cfg), "schedule", "openclaw-failover.timer")
    assert timer.status == "warn" and timer.fix == "systemctl --user start openclaw-failover.timer"
    write_script(
        tmp_path / "bin" / "systemctl",
        'case "$2" in is-enabled) echo enabled ;; is-active) echo active ;; esac\n',
    )
    assert one(doc(cfg), "schedule", "enabled and active").status == "ok"


def test_schedule_timer_file_without_a_reachable_user_manager_fails_with_linger(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport], tmp_path: Path
) -> None:
    cfg = offline()
    save_state(cfg, last_tick_at=NOW - 30)
    write_script(tmp_path / "bin" / "systemctl", 'echo "Failed to connect to bus" >&2; exit 1\n')
    unit = tmp_path / ".config" / "systemd" / "user" / "openclaw-failover.timer"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Timer]\nOnUnitActiveSec=30s\n")
    check = checks(doc(cfg), "schedule")[0]
    assert check.status == "FAIL" and f"{unit} exists" in check.detail
    assert check.fix.startswith("loginctl enable-linger ")


@pytest.mark.parametrize(
    ("age_intervals", "status"), [(0.5, "ok"), (4, "warn"), (11, "FAIL"), (None, "FAIL")]
)
def test_last_tick_age(
    age_intervals: float | None,
    status: str,
    offline: Callable[..., Config],
    doc: Callable[..., DoctorReport],
    no_system_cron: Path,
) -> None:
    cfg = offline(check={"interval": 30})
    (no_system_cron / "ocf").write_text("*/2 * * * * pi ocf check\n")  # a schedule exists
    if age_intervals is not None:
        save_state(cfg, last_tick_at=NOW - age_intervals * 30)
    check = checks(doc(cfg), "schedule")[-1]
    assert check.status == status, check
    if status != "ok":
        assert "ocf check -v" in check.fix
    if age_intervals is None:
        assert "no check has run yet" in check.detail


def test_secret_file_modes_are_read_not_changed(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text(f"OCF_TELEGRAM_TOKEN={TOKEN}\n")
    path.chmod(0o640)
    sink = doctor.Sink("config", Masker([TOKEN]))
    doctor_base.secret_file(sink, path, (TOKEN,), "env file")
    [check] = sink.close()
    assert (check.status, check.fix) == ("warn", f"chmod 600 {path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# --------------------------------------------------------------------------- monitoring


class _Recorder:
    """A real HTTP server on 127.0.0.1 that records (method, path) of every request."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen: list[tuple[str, str]] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append((self.command, self.path))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_monitoring_metrics_folder_and_ping_host_without_sending_the_ping(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport], tmp_path: Path
) -> None:
    assert statuses(doc(offline()), "monitoring") == ["skip"]
    folder = tmp_path / "textfile"
    recorder = _Recorder()
    try:
        url = f"http://127.0.0.1:{recorder.port}/ping/0c5a-uuid-token"
        cfg = offline(metrics={"textfile": str(folder / "ocf.prom")}, monitoring={"ping_url": url})
        missing, ping = checks(doc(cfg), "monitoring")
        assert missing.status == "FAIL" and "does not exist" in missing.detail
        assert missing.fix.startswith(f"mkdir -p {folder}")
        assert ping.status == "ok" and "127.0.0.1 answers" in ping.detail
        assert "0c5a-uuid-token" not in ping.detail  # the token is not shown
        assert recorder.seen == [("HEAD", "/")], "only the host, never the ping path"
        folder.mkdir()
        assert statuses(doc(cfg), "monitoring") == ["ok", "ok"]
    finally:
        recorder.close()
    closed = offline(monitoring={"ping_url": f"http://127.0.0.1:{free_port()}/x"})
    (unreachable,) = checks(doc(closed), "monitoring")
    assert unreachable.status == "FAIL" and "not reachable" in unreachable.detail
    placeholder = offline(monitoring={"ping_url": "https://hc-ping.com/your-check-uuid"})
    (example,) = checks(doc(placeholder), "monitoring")
    assert example.status == "FAIL" and "placeholder" in example.detail


def test_json_checks_carry_a_stable_unique_id(
    offline: Callable[..., Config], doc: Callable[..., DoctorReport]
) -> None:
    import re

    cfg = offline(metrics={"textfile": "/nonexistent/ocf.prom"})
    first, second = doc(cfg).to_json()["checks"], doc(cfg).to_json()["checks"]
    ids = [c["id"] for c in first]
    assert ids == [c["id"] for c in second], "the same checks get the same ids"
    assert len(ids) == len(set(ids)), ids
    assert all(re.fullmatch(r"[a-z]+\.[a-z_]+(#\d+)?", i) for i in ids), ids
    assert all(c["id"].startswith(c["name"] + ".") for c in first)
    assert "schedule.check_schedule" in ids and "monitoring.metrics_folder" in ids
    assert "gateway.start_command" in ids and "gateway.stop_command" in ids
