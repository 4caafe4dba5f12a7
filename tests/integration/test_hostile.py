"""A table of hostile inputs: config, state, events, CLI arguments, file names, server answers.

Each row runs the real `ocf` entry point (in-process, for speed) and states the exit
code and a fragment of the one line it must print.  Every row also checks that no
traceback, no "unexpected error" and no hang happened, and that nothing in the state
folder or the config folder changed that should not have.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openclaw_failover.cli import app as cli

ROW_TIMEOUT = 20  # seconds: a row that takes longer is a hang


# --------------------------------------------------------------------------- the rig


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    root: Path
    config: Path
    state: Path
    env: dict[str, str]
    health: str
    extra: dict[str, Any] = field(default_factory=dict)

    def yaml(self, body: str = "", *, state_dir: str | None = None, **raw: str) -> str:
        """The base config (valid) as block YAML; ``raw`` sets leaves by dotted path to
        raw YAML text; ``body`` is appended (top-level keys not in the base)."""
        doc: dict[str, Any] = {
            "primary": {
                "host": "127.0.0.1",
                "ssh": {
                    "user": "nobody",
                    "port": str(_closed_port()),
                    "key_file": str(self.root / "id"),
                    "known_hosts": str(self.root / "kh"),
                    "connect_timeout": "1",
                },
            },
            "standby": {
                "gateway": {
                    "health_url": self.health,
                    "start_command": "/bin/false",
                    "stop_command": "/bin/true",
                }
            },
            "check": {"retries": "0", "deadline": "15"},
            "state_dir": state_dir or str(self.state),
        }
        for path, value in raw.items():
            node = doc
            *parents, leaf = path.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return _block(doc, 0) + body

    def write(self, body: str = "", **raw: str) -> None:
        self.config.write_text(self.yaml(body, **raw))


def _block(node: dict[str, Any], indent: int) -> str:
    out = ""
    for key, value in node.items():
        if isinstance(value, dict):
            out += " " * indent + f"{key}:\n" + _block(value, indent + 2)
        else:
            out += " " * indent + f"{key}: {value}\n"
    return out


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    (tmp_path / "id").write_text("key")
    (tmp_path / "kh").write_text("")
    conf = tmp_path / "conf"
    conf.mkdir()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    r = Rig(
        root=tmp_path,
        config=conf / "config.yaml",
        state=state,
        env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        health=f"http://127.0.0.1:{_closed_port()}/",
    )
    r.write()
    return r


def _snapshot(*roots: Path) -> dict[str, tuple[int, bytes | str]]:
    out: dict[str, tuple[int, bytes | str]] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        paths = [root, *root.rglob("*")] if root.is_dir() and not root.is_symlink() else [root]
        for p in paths:
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out[str(p)] = (st.st_mode, p.read_bytes())
            elif stat.S_ISLNK(st.st_mode):
                out[str(p)] = (st.st_mode, os.readlink(p))
            else:
                out[str(p)] = (st.st_mode, b"")
    return out


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in this thread after ``seconds``: a watchdog thread signals it
    (SIGUSR1, so the tick's own SIGALRM deadline cannot cancel the watchdog); the signal
    interrupts a blocking system call such as opening a FIFO."""

    def on_signal(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hang: the row took more than {seconds}s")

    previous = signal.signal(signal.SIGUSR1, on_signal)
    main = threading.get_ident()
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(seconds):
            signal.pthread_kill(main, signal.SIGUSR1)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)


def run_ocf(rig: Rig, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    env = cli.Environment(env=dict(rig.env))
    with _time_limit(ROW_TIMEOUT):
        code = cli.main(args, env)
    out = capsys.readouterr()
    return code, out.out + out.err


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    id: str
    setup: Callable[[Rig], Any]
    args: tuple[str, ...]
    code: int
    fragment: str
    unchanged: bool = True  # the state and config folders stay exactly as they were
    absent: tuple[str, ...] = ()  # must not appear in the output (secrets, fake lines)


def cfg(body: str) -> Callable[[Rig], None]:
    """Append ``body`` (top-level keys the base does not have)."""
    return lambda r: r.write(body)


def v(path: str, value: str) -> Callable[[Rig], None]:
    """Set one leaf of the base config (``primary.ssh.port``) to raw YAML text."""
    return lambda r: r.write(**{path.replace(".", "__"): value})


def raw(data: bytes) -> Callable[[Rig], None]:
    return lambda r: r.config.write_bytes(data)


def state_file(data: bytes | str) -> Callable[[Rig], None]:
    def setup(r: Rig) -> None:
        blob = data.encode() if isinstance(data, str) else data
        fd = os.open(r.state / "state.json", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, blob)
        os.close(fd)

    return setup


def events_file(data: bytes | str) -> Callable[[Rig], None]:
    def setup(r: Rig) -> None:
        blob = data.encode() if isinstance(data, str) else data
        fd = os.open(r.state / "events.jsonl", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, blob)
        os.close(fd)

    return setup


CHECK = ("check",)
STATUS = ("status",)
HISTORY = ("history", "--since", "1000w")
E2 = 2  # exit code of a config or usage error

_GOOD_STATE = (
    '{"schema_version": 1, "role": "primary", "since": 1700000000.0, "paused": false, '
    '"failed_ticks": 0, "healthy_ticks": 0, "fenced": false, "takeovers": 0, "givebacks": 0, '
    '"last_reason": "", "outbox": []}'
)


def _state_with(**fields: str) -> str:
    text = _GOOD_STATE[:-1]
    for k, v in fields.items():
        text = text.replace(f'"{k}": ', f'"{k}_old": ') if f'"{k}": ' in text else text
        text += f', "{k}": {v}'
    return text + "}"


def _event(**fields: str) -> str:
    inner = ", ".join(f'"{k}": {v}' for k, v in fields.items())
    return "{" + inner + "}\n"


CONFIG_ROWS = [
    # numbers
    Row("ssh-port-70000", v("primary.ssh.port", "70000"), CHECK, E2, "at most 65535"),
    Row("ssh-port-0", v("primary.ssh.port", "0"), CHECK, E2, "at least 1"),
    Row("ssh-port-neg", v("primary.ssh.port", "-22"), CHECK, E2, "at least 1"),
    Row("ssh-port-1e30", v("primary.ssh.port", "1.0e+30"), CHECK, E2, "whole number"),
    Row(
        "ssh-port-huge-int",
        v("primary.ssh.port", "99999999999999999999999"),
        CHECK,
        E2,
        "at most 65535",
    ),
    Row("ssh-port-string", v("primary.ssh.port", "'twenty'"), CHECK, E2, "whole number"),
    Row("ssh-port-bool", v("primary.ssh.port", "true"), CHECK, E2, "whole number"),
    Row("connect-timeout-nan", v("primary.ssh.connect_timeout", ".nan"), CHECK, E2, "finite"),
    Row("connect-timeout-inf", v("primary.ssh.connect_timeout", ".inf"), CHECK, E2, "finite"),
    Row("connect-timeout-1e400", v("primary.ssh.connect_timeout", "1.0e+400"), CHECK, E2, "finite"),
    Row(
        "connect-timeout-huge", v("primary.ssh.connect_timeout", "100000"), CHECK, E2, "at most 600"
    ),
    Row("command-timeout-nan", v("primary.ssh.command_timeout", ".nan"), CHECK, E2, "finite"),
    Row("deadline-inf", v("check.deadline", ".inf"), CHECK, E2, "finite"),
    Row("deadline-nan", v("check.deadline", ".nan"), CHECK, E2, "finite"),
    Row("deadline-1e12", v("check.deadline", "1.0e+12"), CHECK, E2, "at most 86400"),
    Row("deadline-bigint", v("check.deadline", "1000000000000000000000"), CHECK, E2, "at most"),
    Row("retries-million", v("check.retries", "1000000"), CHECK, E2, "at most 100"),
    Row("retries-nan", v("check.retries", ".nan"), CHECK, E2, "whole number"),
    Row("fall-huge", v("check.fall", "1000000000"), CHECK, E2, "at most 10000"),
    Row("probe-timeout-nan", v("check.probe_timeout", ".nan"), CHECK, E2, "finite"),
    Row("probe-timeout-neg-inf", v("check.probe_timeout", "-.inf"), CHECK, E2, "finite"),
    Row("alert-interval-inf", v("check.alert_interval", ".inf"), CHECK, E2, "finite"),
    Row("interval-inf", v("check.interval", ".inf"), CHECK, E2, "finite"),
    Row("retry-delay-huge", v("check.retry_delay", "1.0e+9"), CHECK, E2, "at most 3600"),
    Row("start-timeout-nan", v("standby.gateway.start_timeout", ".nan"), CHECK, E2, "finite"),
    Row(
        "telegram-timeout-nan",
        cfg("telegram: {token: 'x:y', chat_id: 1, timeout: .nan}\n"),
        CHECK,
        E2,
        "finite",
    ),
    Row(
        "ping-timeout-inf",
        cfg("monitoring: {ping_url: 'http://127.0.0.1:1/p', ping_timeout: .inf}\n"),
        CHECK,
        E2,
        "finite",
    ),
    Row(
        "db-connect-timeout-nan",
        cfg("database: {primary_dsn: 'host=x', standby_dsn: 'host=y', connect_timeout: .nan}\n"),
        CHECK,
        E2,
        "finite",
    ),
    # URLs
    Row(
        "health-url-port-99999",
        v("primary.gateway.health_url", "'http://127.0.0.1:99999/'"),
        CHECK,
        E2,
        "valid port",
    ),
    Row(
        "health-url-port-abc",
        v("primary.gateway.health_url", "'http://127.0.0.1:abc/'"),
        CHECK,
        E2,
        "valid port",
    ),
    Row(
        "health-url-port-0",
        v("primary.gateway.health_url", "'http://127.0.0.1:0/'"),
        CHECK,
        E2,
        "valid port",
    ),
    Row(
        "health-url-ftp",
        v("primary.gateway.health_url", "'ftp://127.0.0.1/'"),
        CHECK,
        E2,
        "http:// or https://",
    ),
    Row(
        "health-url-no-host",
        v("primary.gateway.health_url", "'http:///x'"),
        CHECK,
        E2,
        "with a host",
    ),
    Row(
        "health-url-no-scheme",
        v("primary.gateway.health_url", "'127.0.0.1:18789'"),
        CHECK,
        E2,
        "http:// or https://",
    ),
    Row(
        "health-url-space",
        v("standby.gateway.health_url", "'http://exa mple/'"),
        CHECK,
        E2,
        "space",
    ),
    Row(
        "health-url-file",
        v("standby.gateway.health_url", "'file:///etc/passwd'"),
        CHECK,
        E2,
        "http:// or https://",
    ),
    Row(
        "base-url-port",
        cfg("telegram: {token: 'x:y', chat_id: 1, base_url: 'http://127.0.0.1:70000/bot'}\n"),
        CHECK,
        E2,
        "valid port",
    ),
    Row(
        "ping-url-secret-not-echoed",
        cfg("monitoring: {ping_url: 'http://127.0.0.1:99999/pingsecret-5f3a9c'}\n"),
        CHECK,
        E2,
        "valid port",
        absent=("pingsecret",),
    ),
    Row(
        "ping-url-javascript",
        cfg("monitoring: {ping_url: 'javascript:alert(1)'}\n"),
        CHECK,
        E2,
        "http:// or https://",
    ),
    # control characters
    Row(
        "state-dir-newline-cron-line",
        lambda r: r.config.write_text(
            r.yaml(state_dir='"/tmp/x\\n* * * * * root touch /tmp/pwned\\n#"')
        ),
        CHECK,
        E2,
        "control character (U+000A)",
    ),
    Row(
        "state-dir-nul",
        lambda r: r.config.write_text(r.yaml(state_dir='"/tmp/x\\0y"')),
        CHECK,
        E2,
        "control character (U+0000)",
    ),
    Row(
        "state-dir-cr",
        lambda r: r.config.write_text(r.yaml(state_dir='"/tmp/x\\ry"')),
        CHECK,
        E2,
        "control character (U+000D)",
    ),
    Row("host-newline", v("primary.host", '"127.0.0.1\\nevil"'), CHECK, E2, "control character"),
    Row("user-newline", v("primary.ssh.user", '"pi\\nroot"'), CHECK, E2, "control character"),
    Row(
        "name-escape-seq",
        v("standby.name", '"\\e[2Jpwned"'),
        CHECK,
        E2,
        "control character (U+001B)",
    ),
    Row(
        "start-command-newline",
        v("standby.gateway.start_command", '"/bin/true\\n/bin/sh"'),
        CHECK,
        E2,
        "control character",
    ),
    Row(
        "stop-command-list-nul",
        v("primary.gateway.stop_command", '["kill", "a\\0b"]'),
        CHECK,
        E2,
        "control character",
    ),
    Row(
        "files-path-newline",
        cfg('files: [{path: "/tmp/a\\nb", remote_path: "~/x"}]\n'),
        CHECK,
        E2,
        "control character",
    ),
    Row(
        "remote-path-newline",
        cfg('files: [{path: "/tmp/a", remote_path: "~/x\\n--delete"}]\n'),
        CHECK,
        E2,
        "control character",
    ),
    Row(
        "tables-newline",
        cfg('database: {primary_dsn: "host=x", standby_dsn: "host=y", tables: ["a\\nb"]}\n'),
        CHECK,
        E2,
        "control character",
    ),
    Row(
        "ping-url-newline",
        cfg('monitoring: {ping_url: "http://127.0.0.1/a\\nb"}\n'),
        CHECK,
        E2,
        "control character",
    ),
    Row(
        "token-line-separator",
        cfg('telegram: {token: "1:ab\\u2028cd", chat_id: 1}\n'),
        CHECK,
        E2,
        "control character (U+2028)",
    ),
    Row("string-too-long", v("primary.name", "n" * 5000), CHECK, E2, "too long"),
    # templates
    Row(
        "template-huge-width",
        cfg("messages: {took_over: '{time:>100000}'}\n"),
        CHECK,
        E2,
        "no format spec",
    ),
    Row(
        "template-conversion",
        cfg("messages: {took_over: '{time!r}'}\n"),
        CHECK,
        E2,
        "no format spec",
    ),
    Row(
        "template-attribute",
        cfg("messages: {took_over: '{primary.__class__}'}\n"),
        CHECK,
        E2,
        "unknown field",
    ),
    Row("template-positional", cfg("messages: {took_over: '{0}'}\n"), CHECK, E2, "unknown field"),
    Row("template-unclosed", cfg("messages: {took_over: 'a {time'}\n"), CHECK, E2, "bad template"),
    Row("template-nul", cfg('messages: {took_over: "a\\0b"}\n'), CHECK, E2, "control character"),
    Row(
        "template-too-long",
        cfg("messages: {took_over: '" + "x" * 5000 + "'}\n"),
        CHECK,
        E2,
        "too long",
    ),
    # types
    Row("chat-id-text", cfg("telegram: {token: 'x:y', chat_id: 'abc'}\n"), CHECK, E2, "chat id"),
    Row("failback-number", v("check.failback", "1"), CHECK, E2, "expected one of"),
    Row("section-is-list", cfg("monitoring: [1, 2]\n"), CHECK, E2, "expected a mapping"),
    Row("unknown-key-control", cfg('"bad\\nkey": 1\n'), CHECK, E2, "unknown key"),
    # secrets in config errors
    Row(
        "secret-var-not-echoed",
        lambda r: (
            r.env.update(MY_SECRET_TOKEN="s3cr3t-value-42x"),
            r.write(check__failback="${MY_SECRET_TOKEN}"),
        ),
        CHECK,
        E2,
        "expected one of",
        absent=("s3cr3t-va", "value-42x"),
    ),
    Row(
        "unset-var",
        cfg("telegram: {token: '${NOPE_TOKEN}', chat_id: 1}\n"),
        CHECK,
        E2,
        "NOPE_TOKEN is not set",
    ),
    # YAML documents
    Row(
        "duplicate-top-key",
        lambda r: r.config.write_text(r.yaml("metrics: {}\nmetrics: {}\n")),
        CHECK,
        E2,
        "duplicate key 'metrics'",
    ),
    Row(
        "duplicate-nested-key",
        cfg("telegram: {token: a, token: b, chat_id: 1}\n"),
        CHECK,
        E2,
        "duplicate key 'token'",
    ),
    Row("alias-simple", cfg("metrics: &c {}\nmonitoring: *c\n"), CHECK, E2, "aliases"),
    Row(
        "alias-bomb",
        lambda r: r.config.write_text(
            "a: &a [x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
                for i in range(8)
            )
        ),
        CHECK,
        E2,
        "aliases",
    ),
    Row(
        "merge-key", cfg("base: &b {ping_timeout: 2}\nmonitoring: {<<: *b}\n"), CHECK, E2, "aliases"
    ),
    Row(
        "deep-flow-nesting",
        raw(b"files: " + b"[" * 10000 + b"]" * 10000 + b"\n"),
        CHECK,
        E2,
        "nested deeper",
    ),
    Row(
        "deep-block-nesting",
        raw("".join("  " * i + f"k{i}:\n" for i in range(200)).encode()),
        CHECK,
        E2,
        "nested deeper",
    ),
    Row("non-utf8", raw(b"primary:\n  host: \xff\xfe\n"), CHECK, E2, "not UTF-8"),
    Row("latin1", raw("primary: {name: caf\xe9}\n".encode("latin-1")), CHECK, E2, "not UTF-8"),
    Row("nul-byte", raw(b"primary: {host: a}\x00\n"), CHECK, E2, "NUL"),
    Row("oversize", raw(b"# " + b"x" * (2 * 1024 * 1024) + b"\n"), CHECK, E2, "too large"),
    Row(
        "python-tag",
        cfg("metrics: !!python/object/apply:os.system ['touch /tmp/pwned']\n"),
        CHECK,
        E2,
        "not valid YAML",
    ),
    Row("top-level-list", raw(b"- a\n- b\n"), CHECK, E2, "expected a mapping"),
    Row("top-level-scalar", raw(b"just text\n"), CHECK, E2, "expected a mapping"),
    Row("tab-indent", raw(b"primary:\n\thost: x\n"), CHECK, E2, "not valid YAML"),
    Row("empty-config", raw(b""), CHECK, E2, "required key is missing"),
]


def _state_dir_owned_by_nobody(r: Rig) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    os.chown(r.state, nobody.pw_uid, nobody.pw_gid)


def _state_dir_mode(mode: int) -> Callable[[Rig], None]:
    return lambda r: os.chmod(r.state, mode)


def _state_dir_is_file(r: Rig) -> None:
    r.state.rmdir()
    r.state.write_text("not a folder")


def _state_dir_symlink(r: Rig) -> None:
    real = r.root / "elsewhere"
    real.mkdir(mode=0o700)
    r.state.rmdir()
    r.state.symlink_to(real)


def _planted_symlink(name: str) -> Callable[[Rig], None]:
    def setup(r: Rig) -> None:
        victim = r.root / "victim"
        victim.write_text("precious\n")
        (r.state / name).symlink_to(victim)
        r.extra["victim"] = victim

    return setup


def _fifo(name: str) -> Callable[[Rig], None]:
    return lambda r: os.mkfifo(r.state / name)


STATE_DIR_ROWS = [
    Row("state-dir-other-owner-check", _state_dir_owned_by_nobody, CHECK, E2, "not by this user"),
    Row("state-dir-other-owner-status", _state_dir_owned_by_nobody, STATUS, E2, "not by this user"),
    Row(
        "state-dir-other-owner-pause",
        _state_dir_owned_by_nobody,
        ("pause",),
        E2,
        "not by this user",
    ),
    Row(
        "state-dir-world-writable", _state_dir_mode(0o777), CHECK, E2, "writable by group or others"
    ),
    Row(
        "state-dir-group-writable",
        _state_dir_mode(0o770),
        STATUS,
        E2,
        "writable by group or others",
    ),
    Row("state-dir-is-file-check", _state_dir_is_file, CHECK, E2, "is not a directory"),
    Row("state-dir-is-file-history", _state_dir_is_file, HISTORY, E2, "is not a directory"),
    Row("state-dir-symlink", _state_dir_symlink, CHECK, E2, "symbolic link"),
]

STATE_ROWS = [
    Row("state-nan-since", state_file(_state_with(since="NaN")), STATUS, 0, "is corrupt"),
    Row(
        "state-inf-time", state_file(_state_with(last_tick_at="Infinity")), STATUS, 0, "is corrupt"
    ),
    Row("state-huge-time", state_file(_state_with(since="1e300")), STATUS, 0, "is corrupt"),
    Row(
        "state-huge-int-time",
        state_file(_state_with(last_tick_at="1" + "0" * 40)),
        STATUS,
        0,
        "is corrupt",
    ),
    Row("state-neg-counter", state_file(_state_with(takeovers="-5")), STATUS, 0, "is corrupt"),
    Row(
        "state-string-since", state_file(_state_with(since='"yesterday"')), STATUS, 0, "is corrupt"
    ),
    Row("state-bad-role", state_file(_state_with(role='"boss"')), STATUS, 0, "is corrupt"),
    Row("state-outbox-string", state_file(_state_with(outbox='"x"')), STATUS, 0, "is corrupt"),
    Row(
        "state-outbox-nan",
        state_file(
            _state_with(outbox='[{"id": "a", "kind": "k", "text": "t", "created_at": NaN}]')
        ),
        STATUS,
        0,
        "is corrupt",
    ),
    Row(
        "state-alerts-nan",
        state_file(_state_with(last_alert_at='{"x": NaN}')),
        STATUS,
        0,
        "is corrupt",
    ),
    Row(
        "state-odd-probe",
        state_file(_state_with(last_probe='{"status": [1], "latency": "x", "at": 1e300}')),
        STATUS,
        0,
        "last probe:",
    ),
    Row(
        "state-non-utf8",
        state_file(b'{"schema_version": 1, "last_reason": "\xff"}'),
        STATUS,
        0,
        "not UTF-8",
    ),
    Row("state-list", state_file("[1, 2, 3]"), STATUS, 0, "is corrupt"),
    Row(
        "state-reason-newline",
        state_file(_state_with(last_reason='"a\\nFAKE: line"')),
        STATUS,
        0,
        "a FAKE: line",
    ),
    Row("state-deep", state_file("[" * 100000 + "]" * 100000), STATUS, 0, "is corrupt"),
    Row(
        "state-version-99",
        state_file(_state_with(schema_version="99")),
        STATUS,
        0,
        "schema_version",
    ),
    Row("state-huge", state_file(" " * (5 * 1024 * 1024)), STATUS, 0, "is corrupt"),
    Row("state-is-dir", lambda r: (r.state / "state.json").mkdir(), STATUS, 0, "unreadable"),
    Row("state-fifo", _fifo("state.json"), STATUS, 0, "unreadable"),
    Row(
        "state-symlink-not-followed",
        lambda r: (r.state / "state.json").symlink_to("/etc/hostname"),
        STATUS,
        0,
        "unreadable",
    ),
    Row(
        "state-nan-dry-run-check",
        state_file(_state_with(since="NaN")),
        ("check", "--dry-run"),
        0,
        "",
    ),
]

EVENTS_ROWS = [
    Row(
        "events-non-utf8-status",
        events_file(b'\xff\xfe{"ts": 1}\n' + _event(ts="1700000000", type='"tick"').encode()),
        STATUS,
        0,
        "last events:",
    ),
    Row(
        "events-non-utf8-history",
        events_file(b"\xff\xfe\n" + _event(ts="1700000000", type='"tick"', reason='"ok"').encode()),
        HISTORY,
        0,
        "check",
    ),
    Row(
        "events-non-object-status",
        events_file('[1, 2]\n42\n"text"\nnull\n' + _event(ts="1700000000", type='"tick"')),
        STATUS,
        0,
        "last events:",
    ),
    Row("events-non-object-history", events_file('[1, 2]\n42\n"text"\n'), HISTORY, 0, "no events"),
    Row("events-nan-ts", events_file(_event(ts="NaN", type='"tick"')), HISTORY, 0, "no events"),
    Row(
        "events-huge-ts",
        events_file(_event(ts="1e300", type='"tick"', reason='"later"')),
        HISTORY,
        0,
        "?",
    ),
    Row(
        "events-ts-string", events_file(_event(ts='"now"', type='"tick"')), HISTORY, 0, "no events"
    ),
    Row(
        "events-steps-int",
        events_file(_event(ts="1700000000", type='"action"', action='"GiveBack"', steps="5")),
        HISTORY,
        0,
        "give back",
    ),
    Row(
        "events-steps-int-status",
        events_file(_event(ts="1700000000", type='"action"', action='"GiveBack"', steps="5")),
        STATUS,
        0,
        "last events:",
    ),
    Row(
        "events-steps-ints",
        events_file(
            _event(ts="1700000000", type='"action"', action='"GiveBack"', steps="[1, null]")
        ),
        STATUS,
        0,
        "last events:",
    ),
    Row(  # not an event of any known type: skipped
        "events-type-dict",
        events_file(_event(ts="1700000000", type="{}")),
        STATUS,
        0,
        "local gateway:",
        absent=("last events:",),
    ),
    Row(
        "events-newline-reason",
        events_file(_event(ts="1700000000", type='"tick"', reason='"a\\nFAKE LINE"')),
        STATUS,
        0,
        "a FAKE LINE",
    ),
    Row(
        "events-long-line",
        events_file(
            '{"ts": 1700000000, "type": "tick", "reason": "'
            + "x" * 200_000
            + '"}\n'
            + _event(ts="1700000001", type='"tick"', reason='"short"')
        ),
        STATUS,
        0,
        "last events:",
    ),
    Row("events-deep", events_file("[" * 50000 + "\n"), HISTORY, 0, "no events"),
    Row("events-is-dir", lambda r: (r.state / "events.jsonl").mkdir(), HISTORY, 0, "no events"),
    Row(
        "events-symlink",
        lambda r: (r.state / "events.jsonl").symlink_to("/etc/hostname"),
        HISTORY,
        0,
        "no events",
    ),
    Row("events-fifo", _fifo("events.jsonl"), STATUS, 0, "local gateway:"),
]

SYMLINK_ROWS = [
    Row(
        "planted-lock-symlink",
        _planted_symlink("ocf.lock"),
        ("pause",),
        E2,
        "ocf.lock: a symlink",
        unchanged=False,  # ocf.log is created before the lock is taken
    ),
    Row(
        "planted-lock-symlink-check",
        _planted_symlink("ocf.lock"),
        CHECK,
        E2,
        "ocf.lock: a symlink",
        unchanged=False,
    ),
    Row(
        "planted-log-symlink", _planted_symlink("ocf.log"), ("pause",), 0, "paused", unchanged=False
    ),
    Row(
        "planted-events-symlink",
        _planted_symlink("events.jsonl"),
        ("pause",),
        0,
        "paused",
        unchanged=False,
    ),
    Row(
        "planted-state-symlink",
        _planted_symlink("state.json"),
        ("pause",),
        0,
        "paused",
        unchanged=False,
    ),
    Row(
        "planted-tmp-state",
        _planted_symlink(".state.json-x.tmp"),
        ("resume",),
        0,
        "resumed",
        unchanged=False,
    ),
]

CLI_ROWS = [
    Row("since-garbage", lambda r: None, ("history", "--since", "yesterday-ish"), E2, "--since"),
    Row("since-future", lambda r: None, ("history", "--since", "2999-01-01"), E2, "in the future"),
    Row("since-empty", lambda r: None, ("history", "--since", ""), E2, "--since"),
    Row("since-newline", lambda r: None, ("history", "--since", "7d\nFAKE"), E2, "--since"),
    Row("since-huge", lambda r: None, ("history", "--since", "9" * 400 + "d"), 0, "no events"),
    Row(
        "config-missing",
        lambda r: None,
        ("--config", "/nonexistent/ocf.yaml", "check"),
        E2,
        "cannot read config",
    ),
    Row("config-dir", lambda r: None, ("--config", "/", "check"), E2, "cannot read config"),
    Row(
        "config-nul", lambda r: None, ("--config", "/tmp/a\x00b", "check"), E2, "cannot read config"
    ),
    Row(
        "config-fifo",
        lambda r: os.mkfifo(r.root / "fifo.yaml"),
        ("--config", "{root}/fifo.yaml", "check"),
        E2,
        "not a regular file",
    ),
    Row(
        "config-dev-zero",
        lambda r: None,
        ("--config", "/dev/zero", "check"),
        E2,
        "not a regular file",
    ),
    Row("unknown-command", lambda r: None, ("nosuch",), E2, "No such command"),
    Row("unknown-option", lambda r: None, ("check", "--bogus"), E2, "No such option"),
    Row("install-unknown-kind", lambda r: None, ("install", "launchd"), E2, "launchd"),
]


# --------------------------------------------------------------------------- server answers


class _Server:
    """A raw TCP server on 127.0.0.1 that answers every connection with ``answer``."""

    def __init__(self, answer: bytes, delay: float = 0.0) -> None:
        self.answer, self.delay = answer, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(1)
                conn.recv(65536)
                if self.delay:
                    for byte in self.answer:
                        if self.stop.wait(self.delay):
                            break
                        conn.sendall(bytes([byte]))
                else:
                    conn.sendall(self.answer)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _gateway_answers(answer: bytes, delay: float = 0.0) -> Callable[[Rig], None]:
    def setup(r: Rig) -> None:
        server = _Server(answer, delay)
        r.extra["server"] = server
        r.health = f"http://127.0.0.1:{server.port}/"
        r.write()

    return setup


SERVER_ROWS = [
    Row("gateway-closes", _gateway_answers(b""), STATUS, 0, "local gateway:"),
    Row(
        "gateway-garbage",
        _gateway_answers(b"\x00\xff garbage\r\n\r\n"),
        STATUS,
        0,
        "local gateway:",
    ),
    Row(
        "gateway-status-999",
        _gateway_answers(b"HTTP/1.1 999 Odd\r\n\r\n"),
        STATUS,
        0,
        "local gateway:",
    ),
    Row(
        "gateway-huge-header",
        _gateway_answers(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 300_000 + b"\r\n\r\n"),
        STATUS,
        0,
        "local gateway:",
    ),
    Row(
        "gateway-non-utf8",
        _gateway_answers(b"HTTP/1.1 200 \xff\xfe\r\n\r\n"),
        STATUS,
        0,
        "local gateway:",
    ),
    Row(
        "gateway-slow-drip",
        _gateway_answers(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200, delay=0.05),
        STATUS,
        0,
        "local gateway:",
    ),
    Row(
        "gateway-newlines-status",
        _gateway_answers(b"HTTP/1.1 200 OK\nFAKE\n\n"),
        STATUS,
        0,
        "local gateway:",
    ),
]

ROWS = (
    CONFIG_ROWS + STATE_DIR_ROWS + STATE_ROWS + EVENTS_ROWS + SYMLINK_ROWS + CLI_ROWS + SERVER_ROWS
)


def test_the_table_has_at_least_100_rows_with_unique_ids() -> None:
    ids = [r.id for r in ROWS]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_input(row: Row, rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    if "other-owner" in row.id and os.geteuid() != 0:
        pytest.skip("needs root to give the state folder to another user")
    row.setup(rig)
    capsys.readouterr()
    before = _snapshot(rig.state, rig.config.parent)
    args = [a.replace("{root}", str(rig.root)) for a in row.args]
    if args and args[0] != "--config":
        args = ["--config", str(rig.config), *args]
    try:
        code, out = run_ocf(rig, args, capsys)
    finally:
        server = rig.extra.get("server")
        if server is not None:
            server.close()
    assert "unexpected error" not in out and "Traceback" not in out, out
    assert code == row.code, out
    assert row.fragment in out, out
    for secret in row.absent:
        assert secret not in out, out
    if row.code == E2:
        message = [ln for ln in out.splitlines() if ln.strip()]
        assert message and message[0].startswith(("ocf:", "Usage:", "Error:", "ocf install")), out
    if row.unchanged:
        assert _snapshot(rig.state, rig.config.parent) == before, "the state folder changed"
    victim = rig.extra.get("victim")
    if victim is not None:
        assert victim.read_text() == "precious\n", "a file was written through a symlink"
        assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    for path in rig.state.rglob("*") if rig.state.is_dir() and not rig.state.is_symlink() else []:
        if path.is_file() and not path.is_symlink() and path.name != "ocf.lock":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_newline_in_a_workspace_file_name_adds_no_output_line() -> None:
    """`ocf syncback` prints one line per file: a name with a newline cannot fake one."""
    from openclaw_failover.syncback.files.sync import FileSyncReport

    report = FileSyncReport(
        copied=["notes\ncopied /etc/shadow"],
        conflicts=[("a\rb", "a\rb.standby-20261202")],
        refused=[("x\u2028y", "why\nnot")],
        errors=["rsync: e\nf"],
    )
    lines = report.lines()
    assert len(lines) == 4
    for line in [*lines, report.summary()]:
        assert not any(c in line for c in "\n\r\u2028"), line
    assert lines[0] == "copied notes\\ncopied /etc/shadow"


def test_notice_rendering_stays_linear_on_long_blank_runs(tmp_path: Path) -> None:
    """A reason or detail with long runs of blanks (a remote error page) rendered fast:
    the tidying regexes were quadratic (20 000 blanks took 13 s). Not a benchmark: a
    hang guard with a generous bound."""
    import time

    from openclaw_failover.config.loader import parse_config
    from openclaw_failover.notify import telegram as notify

    (tmp_path / "id").write_text("k")
    (tmp_path / "kh").write_text("")
    ssh = {"user": "u", "key_file": str(tmp_path / "id"), "known_hosts": str(tmp_path / "kh")}
    cfg = parse_config({"primary": {"host": "h", "ssh": ssh}}, "c", {})
    started = time.monotonic()
    text = notify.render(cfg, "took_over", reason="a" + " " * 20_000 + "b", detail="", at=0)
    assert time.monotonic() - started < 2.0
    assert "a b" in text and len(text) <= notify.MAX_TEXT


@pytest.mark.parametrize("writer", ["touch", "append", "write_atomic", "lock", "log", "fence"])
def test_no_write_through_a_planted_symlink(tmp_path: Path, writer: str) -> None:
    """Every way ocf writes into the state folder refuses a symlink planted there
    (the fence marker, the lock, the log, the events log, atomic writes)."""
    import logging

    from openclaw_failover.config.secrets import Masker
    from openclaw_failover.engine import lock
    from openclaw_failover.engine.store import FENCE_MARKER
    from openclaw_failover.local import logs, safefs

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    names = {"lock": lock.LOCK_FILE, "log": logs.LOG_FILE, "fence": FENCE_MARKER}
    link = state / names.get(writer, "file")
    link.symlink_to(victim)
    if writer == "touch":
        with pytest.raises(OSError):
            safefs.touch(link)
    elif writer == "fence":  # the real actor, SSH replaced by a stub that must not run
        from openclaw_failover.config.loader import parse_config
        from openclaw_failover.engine.actions import Actor

        (tmp_path / "id").write_text("k")
        (tmp_path / "kh").write_text("")
        ssh = {"user": "u", "key_file": str(tmp_path / "id"), "known_hosts": str(tmp_path / "kh")}
        primary = {"host": "h", "ssh": ssh, "gateway": {"stop_command": "stop-it"}}
        cfg = parse_config({"primary": primary, "state_dir": str(state)}, "c", {})
        ran: list[Any] = []
        actor = Actor(cfg, Masker(), {}, remote_run=lambda *a, **k: ran.append(a))
        with pytest.raises(OSError):
            actor._fence([])
        assert not ran, "the marker is written before the fence command"
    elif writer == "append":
        with pytest.raises(OSError):
            safefs.append(link, b"x\n")
    elif writer == "write_atomic":
        safefs.write_atomic(link, b"new\n")  # replaces the link itself
        assert not link.is_symlink() and link.read_bytes() == b"new\n"
    elif writer == "lock":
        with pytest.raises(safefs.StateDirError), lock.exclusive(state):
            pass
    else:
        logger = logs.setup(state, verbose=0, env={}, mask=Masker())
        logger.warning("written somewhere")
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
        logging.getLogger("openclaw_failover").handlers.clear()
    assert victim.read_text() == "precious\n"
