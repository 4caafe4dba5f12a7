"""`ocf init`: the pieces (OS detection, proposals, env file, host key refusal) and the
whole setup against the sandbox's real world (OpenSSH sshd, PostgreSQL with a real
subscription, the fake Bot API): `ocf init --yes ...` writes a config with which
`ocf doctor` passes and `ocf drill` fails over and back."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from openclaw_failover.cli.app import Environment, main
from openclaw_failover.config.loader import load_config
from openclaw_failover.ops.init import (
    Answers,
    build_config,
    primary_dsn_from,
    read_env_file,
    write_config,
    write_env_file,
)
from openclaw_failover.ops.init_ssh import (
    HostKey,
    InitError,
    PrimaryFacts,
    gateway_commands,
    gateway_port,
    parse_facts,
)
from openclaw_failover.sandbox import ocfconfig, postgres, ssh
from openclaw_failover.sandbox.postgres import INSTALL_HINT
from openclaw_failover.sandbox.telegram import DEFAULT_TOKEN

HAVE_PG = postgres.embedded_bin_dir() is not None or bool(os.environ.get("OCF_PG_BIN"))

# --------------------------------------------------------------------------- units


def test_os_detection_and_gateway_commands() -> None:
    mac = parse_facts('Darwin\n501\n/Users/marek\n{"gateway": {"port": 18790}}\n')
    assert mac == PrimaryFacts("macos", "501", "/Users/marek", 18790)
    stop, start = gateway_commands(mac) or ("", "")
    # KeepAlive restarts a merely stopped gateway: the LaunchAgent is unloaded instead.
    assert stop == "launchctl bootout gui/501/ai.openclaw.gateway"
    assert start == (
        "launchctl bootstrap gui/501 /Users/marek/Library/LaunchAgents/ai.openclaw.gateway.plist"
    )
    linux = parse_facts("Linux\n1000\n/home/pi\n")
    assert linux.os == "linux" and linux.gateway_port is None
    assert gateway_commands(linux) == (
        "systemctl --user stop openclaw-gateway.service",
        "systemctl --user start openclaw-gateway.service",
    )
    assert gateway_commands(parse_facts("FreeBSD\n1\n/root\n")) is None


def test_gateway_port_from_openclaw_json_and_json5() -> None:
    assert gateway_port('{"gateway": {"mode": "local", "port": 19001}}') == 19001
    json5 = "{\n  // the gateway\n  gateway: { bind: 'loopback', port: 18800, },\n}\n"
    assert gateway_port(json5) == 18800
    assert gateway_port('{"agents": {}}') is None
    assert gateway_port('{"gateway": {"port": 99999}}') is None
    assert gateway_port("") is None


def test_env_file_is_0600_and_keeps_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "env"
    write_env_file(path, {"OCF_TELEGRAM_TOKEN": "123:abc"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_env_file(path, {"MEMU_PASSWORD": "p w'x"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == {"OCF_TELEGRAM_TOKEN": "123:abc", "MEMU_PASSWORD": "p w'x"}
    shell = subprocess.run(
        ["sh", "-c", f'set -a; . {path}; set +a; printf %s "$MEMU_PASSWORD"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == "p w'x"  # what cron and the timer read


def test_config_secrets_only_as_variables_and_never_overwritten(tmp_path: Path) -> None:
    a = Answers(host="192.0.2.1", user="marek", standby_start="a", standby_stop="b")
    a.key_file = a.known_hosts = str(tmp_path / "key")
    (tmp_path / "key").write_text("")
    a.telegram_token, a.chat_id = "123:Zq9tok", "42"
    dsn, password = primary_dsn_from({"host": "192.0.2.1", "dbname": "memu", "password": "pw-Xy7"})
    assert (dsn, password) == ("host=192.0.2.1 dbname=memu password=${MEMU_PASSWORD}", "pw-Xy7")
    a.primary_dsn, a.standby_dsn, a.subscription = dsn, "dbname=memu", "memu_sub"
    doc = build_config(a)
    path = tmp_path / "config.yaml"
    write_config(path, doc, force=False)
    text = path.read_text()
    assert "Zq9tok" not in text and "pw-Xy7" not in text and "${OCF_TELEGRAM_TOKEN}" in text
    cfg = load_config(path, {"OCF_TELEGRAM_TOKEN": "123:Zq9tok", "MEMU_PASSWORD": "pw-Xy7"})
    assert cfg.telegram is not None and cfg.telegram.chat_id == 42
    with pytest.raises(InitError, match="exists"):
        write_config(path, doc, force=False)
    backup = write_config(path, doc, force=True)
    assert backup is not None and backup.read_text() == text


def test_yes_without_a_key_prints_how_to_make_and_copy_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "id_ed25519"
    args = ["--config", str(tmp_path / "c.yaml"), "init", "--yes", "--host", "192.0.2.7"]
    code = main([*args, "--user", "pi", "--key", str(key)], Environment(env={}))
    err = capsys.readouterr().err
    assert code == 2 and not key.exists() and not (tmp_path / "c.yaml").exists()
    assert f"ssh-keygen -t ed25519 -N '' -f {key}" in err
    assert f"ssh-copy-id -i {key}.pub pi@192.0.2.7" in err


def test_fingerprint_is_what_ssh_keygen_prints(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed (apt-get install openssh-client)")
    key = paramiko.Ed25519Key.from_private_key_file(str(ssh.generate_key(tmp_path / "k", "test")))
    pub = tmp_path / "k.pub"
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True)
    assert HostKey(key).fingerprint == out.stdout.split()[1]
    assert HostKey(key).compare_command() == "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"


# --------------------------------------------------------------------------- the sandbox


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    if not HAVE_PG:
        pytest.skip(INSTALL_HINT)
    if not ssh.openssh_available():
        pytest.skip("OpenSSH sshd not installed (apt-get install openssh-server)")
    from openclaw_failover.sandbox.core import Sandbox

    sb = Sandbox().start()  # under /tmp: the PostgreSQL user must reach it
    try:
        yield sb
    finally:
        sb.close()


def init_args(sb: Any, home: Path, *extra: str) -> list[str]:
    files = sb._endpoints().files
    gw = ocfconfig.unit_command
    args = [
        "init",
        "--yes",
        "--host=127.0.0.1",
        f"--port={sb.ssh.port}",
        f"--user={sb.ssh.user}",
        f"--key={sb.ssh.client_key}",
        f"--known-hosts={home / '.ssh' / 'known_hosts'}",
        f"--primary-health-url={sb.primary.url}",
        f"--primary-stop-command={shlex.join(gw('stop', sb.primary.gateway.dir, remote=True))}",
        f"--primary-start-command={shlex.join(gw('start', sb.primary.gateway.dir, remote=True))}",
        f"--standby-health-url={sb.standby.url}",
        f"--standby-start-command={shlex.join(gw('start', sb.standby.gateway.dir))}",
        f"--standby-stop-command={shlex.join(gw('stop', sb.standby.gateway.dir))}",
        f"--telegram-token={DEFAULT_TOKEN}",
        f"--chat-id={ocfconfig.CHAT_ID}",
        f"--telegram-base-url=http://127.0.0.1:{sb.telegram.spec().extra['port']}/bot",
        f"--standby-dsn={sb.standby.cluster.dsn()}",
        f"--state-dir={home / 'state'}",
        *[f"--set=check.{k}={v}" for k, v in ocfconfig.CHECK.items()],
        "--set=primary.ssh.connect_timeout=2",
    ]
    if files:
        args.append(f"--file={files[0]}/={files[1]}/")
    return [*args, *extra]


def run_ocf(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    environ = {**os.environ, "HOME": str(home), **(env or {})}
    environ.pop("OCF_TELEGRAM_TOKEN", None) if env is None else None
    cmd = [sys.executable, "-m", "openclaw_failover", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=environ)


def test_init_never_adds_an_unconfirmed_host_key(
    world: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, config = tmp_path, tmp_path / "ocf.yaml"
    known = home / ".ssh" / "known_hosts"
    r = run_ocf(home, "--config", str(config), *init_args(world, home))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--accept-host-key SHA256:" in r.stderr and "ssh-keygen -lf" in r.stderr
    assert not known.exists() and not config.exists()
    wrong = "SHA256:" + "A" * 43
    r = run_ocf(
        home, "--config", str(config), *init_args(world, home, f"--accept-host-key={wrong}")
    )
    assert r.returncode == 2 and "does not match" in r.stderr
    assert not known.exists() and not config.exists()
    # interactive: answering no adds nothing either
    env = Environment(env={**os.environ, "HOME": str(home)})
    args = [a for a in init_args(world, home) if a != "--yes"]
    capsys.readouterr()
    code = _interactive(["--config", str(config), *args], env, "\nn\n")  # name, then "no"
    out = capsys.readouterr()
    assert "Is it the same fingerprint? [y/N]" in out.out, out
    assert "host key not confirmed" in out.err
    assert code == 2 and not known.exists() and not config.exists()


def _interactive(args: list[str], env: Environment, answers: str) -> int:
    import io

    stdin = sys.stdin
    sys.stdin = io.StringIO(answers)
    try:
        return main(args, env)
    finally:
        sys.stdin = stdin


def test_init_yes_on_the_sandbox_then_doctor_and_drill_pass(world: Any, tmp_path: Path) -> None:
    home, config = tmp_path, tmp_path / "cfg" / "config.yaml"
    # the fingerprint the user compared on the primary: ssh-keygen -lf of the host key there
    host_pub = world.ssh.dir / "host_key.pub"
    out = subprocess.run(["ssh-keygen", "-lf", str(host_pub)], capture_output=True, text=True)
    fingerprint = out.stdout.split()[1]
    args = init_args(world, home, f"--accept-host-key={fingerprint}")
    r = run_ocf(home, "--config", str(config), *args)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warn  schedule: not installed yet (step 6)" in r.stdout
    assert "ocf --config" in r.stdout and "install systemd" in r.stdout and "drill" in r.stdout
    env_file = config.parent / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert read_env_file(env_file)["OCF_TELEGRAM_TOKEN"] == DEFAULT_TOKEN
    doc = yaml.safe_load(config.read_text())
    assert DEFAULT_TOKEN not in config.read_text()
    assert doc["database"]["subscription"] == "memu_sub"  # found on the standby
    assert f"port={world.primary.cluster.port}" in doc["database"]["primary_dsn"]
    known = (home / ".ssh" / "known_hosts").read_text().split()
    assert known[0] == f"[127.0.0.1]:{world.ssh.port}"
    # the doctor on its own, with the env file loaded as cron and the timer do
    env = read_env_file(env_file)
    r = run_ocf(home, "--config", str(config), "doctor", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    r = run_ocf(
        home,
        "--config",
        str(config),
        "drill",
        "--yes",
        "--interval",
        "0.3",
        "--timeout",
        "60",
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_init_interactive_confirms_the_key_and_sends_a_test_message(
    world: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, config = tmp_path, tmp_path / "cfg" / "config.yaml"
    args = [a for a in init_args(world, home) if a != "--yes"]
    env = Environment(env={**os.environ, "HOME": str(home)})
    before = len(world.telegram_messages())
    # primary's name (default), "yes" the fingerprint matches, standby's name, send a test
    code = _interactive(["--config", str(config), *args], env, "\ny\n\ny\n")
    out = capsys.readouterr().out
    assert "Is it the same fingerprint? [y/N]" in out and "added 127.0.0.1's" in out
    assert code == 0, out
    assert "test message sent" in out, out
    sent = world.telegram_messages()[before:]
    assert len(sent) == 1, sent
    assert load_config(config, {**os.environ, **read_env_file(config.parent / "env")})


# --------------------------------------------------------------------------- config example


def test_config_example_is_the_packaged_copy_with_optional_sections_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = Path(__file__).resolve().parents[2]
    top = (root / "config.example.yaml").read_text()
    assert (root / "src" / "openclaw_failover" / "config" / "example.yaml").read_text() == top
    assert main(["config", "example"], Environment(env={})) == 0
    printed = capsys.readouterr().out
    assert printed == top
    doc = yaml.safe_load(printed)
    assert "metrics" not in doc and "monitoring" not in doc  # commented out: no live placeholders
    assert "# metrics:" in printed and "# monitoring:" in printed


def test_no_config_found_says_where_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if Path("/etc/openclaw-failover/config.yaml").exists():
        pytest.skip("/etc/openclaw-failover/config.yaml exists on this machine")
    monkeypatch.setenv("HOME", str(tmp_path))  # the search paths expand ~
    assert main(["status"], Environment(env={"HOME": str(tmp_path), "PATH": os.defpath})) == 2
    err = capsys.readouterr().err
    assert "no config file found" in err and "ocf init" in err and "ocf config example" in err


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"], Environment(env={})) == 0
    assert capsys.readouterr().out == f"ocf, version {version('openclaw-failover')}\n"


def test_help_keeps_each_config_path_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], Environment(env={})) == 0
    out = capsys.readouterr().out
    assert "~/.config/openclaw-failover/config.yaml" in out
    assert "/etc/openclaw-failover/config.yaml" in out
    assert "ocf init" in out


def test_database_flags_need_no_superuser_and_a_dead_standby_db_says_what_to_pass() -> None:
    from openclaw_failover.cli.init import Asker, _database
    from tests.harness.sshd import free_port

    dead = f"host=127.0.0.1 port={free_port()} dbname=memu connect_timeout=2"
    o: dict[str, Any] = {"no_database": False, "standby_dsn": dead, "primary_dsn": None}
    o["subscription"] = None
    a = Answers(host="h", user="u")
    with pytest.raises(InitError, match="--primary-dsn and --subscription"):
        _database(Asker(True), o, a, {})
    o.update(primary_dsn="host=192.0.2.1 dbname=memu", subscription="memu_sub")
    _database(Asker(True), o, a, {"MEMU_PASSWORD": "pw"})  # not queried: no error
    assert (a.standby_dsn, a.primary_dsn, a.subscription) == (
        dead,
        "host=192.0.2.1 dbname=memu",
        "memu_sub",
    )
    assert "database" in build_config(a) and a.db_password == "pw"
