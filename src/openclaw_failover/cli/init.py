"""`ocf init`: the guided setup (questions, or flags with --yes), registered on ``cli``."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from openclaw_failover.cli.app import Context, Failed, cli, pass_ctx
from openclaw_failover.config.envfile import as_the_check_sees
from openclaw_failover.config.loader import load_config, parse_config
from openclaw_failover.engine.tick import ExitStatus
from openclaw_failover.ops import init_ssh
from openclaw_failover.ops.init import (
    DB_PASSWORD_VAR,
    TOKEN_VAR,
    Answers,
    build_config,
    config_path,
    default_files,
    env_values,
    find_subscription,
    local_gateway,
    parse_set,
    primary_dsn_from,
    write_config,
    write_env_file,
)
from openclaw_failover.ops.init_ssh import DEFAULT_PORT, HostKey, InitError

TIMEOUT = 10.0
USAGE = ExitStatus.CONFIG_ERROR


class Asker:
    """Questions with defaults; with ``--yes`` every default is taken without asking."""

    def __init__(self, yes: bool) -> None:
        self.yes = yes

    def ask(self, question: str, given: str | None, default: str | None = None) -> str | None:
        """A flag wins; else the question (interactive) or the default (--yes)."""
        if given is not None:
            return given
        if self.yes:
            return default
        answer = click.prompt(question, default=default or "", show_default=bool(default))
        return str(answer).strip() or None

    def secret(self, question: str, given: str | None) -> str | None:
        if given is not None or self.yes:
            return given
        answer = click.prompt(question, default="", hide_input=True, show_default=False)
        return str(answer).strip() or None


def _options(f: Any) -> Any:
    opts = [
        click.option("--yes", "-y", is_flag=True, help="Ask nothing: flags and defaults only."),
        click.option("--host", help="The primary's address."),
        click.option("--user", help="SSH user on the primary."),
        click.option("--port", type=int, default=None, help="SSH port (default 22)."),
        click.option("--key", "key_file", help="SSH private key (default ~/.ssh/id_ed25519)."),
        click.option("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)."),
        click.option(
            "--accept-host-key",
            metavar="SHA256:...",
            help="The primary's host key fingerprint you compared (needed with --yes "
            "when known_hosts does not hold the key).",
        ),
        click.option("--primary-name", default=None, help="Name in messages (default primary)."),
        click.option("--standby-name", default=None, help="Name in messages (default standby)."),
        click.option("--primary-health-url", help="The primary's gateway URL, seen on it."),
        click.option("--primary-stop-command", help="Fences the primary's gateway (over SSH)."),
        click.option("--primary-start-command", help="Restarts it at give-back (over SSH)."),
        click.option("--standby-health-url", help="This host's gateway URL."),
        click.option("--standby-start-command", help="Starts this host's gateway."),
        click.option("--standby-stop-command", help="Stops this host's gateway."),
        click.option(
            "--telegram-token", help=f"Bot token (or ${TOKEN_VAR}); kept in the env file."
        ),
        click.option("--chat-id", help="Telegram chat id for notices."),
        click.option("--telegram-base-url", help="Bot API base URL (default api.telegram.org)."),
        click.option("--standby-dsn", help="This host's memU database (default: dbname=memu)."),
        click.option("--primary-dsn", help="The primary's memU database (default: from the sub)."),
        click.option("--subscription", help="The standby's subscription (default: found)."),
        click.option("--no-database", is_flag=True, help="No database: section."),
        click.option("--file", "files", multiple=True, metavar="LOCAL=REMOTE", help="Sync path."),
        click.option("--no-files", is_flag=True, help="No files: section."),
        click.option("--state-dir", help="Where ocf keeps its state."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Any key."),
        click.option("--force", is_flag=True, help="Replace an existing config (kept as .bak)."),
        click.option("--no-doctor", is_flag=True, help="Do not run `ocf doctor` at the end."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@cli.command("init")
@_options
@pass_ctx
def init_cmd(c: Context, /, **o: Any) -> None:
    """Set up this standby: check SSH, write the config and the env file, run the doctor."""
    env = c.environment.env
    path = config_path(c.config_path, env)
    asker = Asker(o["yes"])
    try:
        a = _primary(asker, o, env)
        _standby(asker, o, a, env)
        _database(asker, o, a, env)
        _files(o, a)
        a.extra = parse_set(o["settings"])
        doc = build_config(a)
        merged = {**as_the_check_sees(path, env), **env_values(a)}
        parse_config(doc, str(path), merged)  # the real loader's checks, before writing
        backup = write_config(path, doc, force=o["force"])
    except InitError as exc:
        click.echo(f"ocf init: {exc}", err=True)
        raise Failed(str(exc), USAGE) from None
    if env_values(a):
        write_env_file(path.parent / "env", env_values(a))
        click.echo(f"wrote {path.parent / 'env'} (mode 0600): {', '.join(env_values(a))}")
    if backup:
        click.echo(f"kept the old config as {backup}")
    click.echo(f"wrote {path}")
    cfg = load_config(path, merged)
    if not o["no_doctor"]:
        send_test = bool(cfg.telegram) and not asker.yes
        send_test = send_test and click.confirm(
            "Send a Telegram test message now (ocf doctor --send-test)?", default=True
        )
        _doctor(cfg, merged, path, send_test=send_test)
    _next_steps(path)


def _primary(asker: Asker, o: Mapping[str, Any], env: Mapping[str, str]) -> Answers:
    host = asker.ask("The primary's address (host or IP)", o["host"])
    user = asker.ask("SSH user on the primary", o["user"], env.get("USER"))
    if not host or not user:
        raise InitError("the primary's --host and --user are needed")
    a = Answers(host=host, user=user, port=o["port"] or 22)
    a.key_file = o["key_file"] or a.key_file
    a.known_hosts = o["known_hosts"] or a.known_hosts
    name = asker.ask("Name of the primary in messages", o["primary_name"], "primary")
    a.primary_name = name or "primary"
    key, known = Path(a.key_file).expanduser(), Path(a.known_hosts).expanduser()
    _ssh_key(asker, key, a)
    _host_key(asker, a, known, o["accept_host_key"])
    try:
        out = init_ssh.run_on_primary(
            a.host, a.port, a.user, key, known, init_ssh.FACTS_COMMAND, TIMEOUT
        )
    except InitError as exc:
        raise InitError(f"{exc}; add it there: {_copy_id(a)}") from None
    facts = init_ssh.parse_facts(out)
    click.echo(f"ok: SSH to {a.user}@{a.host} works; the primary runs {facts.os}")
    port = facts.gateway_port or DEFAULT_PORT
    source = "~/.openclaw/openclaw.json" if facts.gateway_port else "the default"
    click.echo(f"   its gateway port: {port} (from {source})")
    url = f"http://127.0.0.1:{port}/"
    given = o["primary_health_url"]
    a.primary_health_url = asker.ask("The primary's gateway URL (seen on it)", given, url) or url
    proposed = init_ssh.gateway_commands(facts) or (None, None)
    if proposed == (None, None) and not o["primary_stop_command"]:
        click.echo(
            f"   no fencing commands known for {facts.os}: set them with --primary-*-command"
        )
    a.primary_stop = asker.ask("Command that stops it", o["primary_stop_command"], proposed[0])
    a.primary_start = asker.ask("Command that starts it", o["primary_start_command"], proposed[1])
    return a


def _copy_id(a: Answers) -> str:
    port = f" -p {a.port}" if a.port != 22 else ""
    return f"ssh-copy-id -i {a.key_file}.pub{port} {a.user}@{a.host}"


def _ssh_key(asker: Asker, key: Path, a: Answers) -> None:
    if key.is_file():
        return
    keygen = ["ssh-keygen", "-t", "ed25519", "-N", "", "-f", str(key)]
    how = f"ssh-keygen -t ed25519 -N '' -f {a.key_file}, then {_copy_id(a)}"
    if asker.yes or not click.confirm(f"No SSH key at {key}. Create one now?", default=True):
        raise InitError(f"no SSH key at {key}: {how}")
    key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        subprocess.run(keygen, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InitError(f"ssh-keygen failed ({exc}); run: {how}") from None
    click.echo(f"created {key}; now copy it to the primary:\n  {_copy_id(a)}")
    click.prompt("Press Enter once that is done", default="", show_default=False)


def _host_key(asker: Asker, a: Answers, known: Path, accept: str | None) -> None:
    """Know the primary's host key; add one only when the user confirmed its fingerprint."""
    have = init_ssh.known_host_keys(known, a.host, a.port)
    key = init_ssh.fetch_host_key(a.host, a.port, TIMEOUT, prefer=tuple(have))
    if have:
        if have.get(key.kind) == key.key:
            click.echo(f"ok: host key of {a.host} is in {known} ({key.fingerprint})")
            return
        raise InitError(
            f"the primary's host key ({key.kind} {key.fingerprint}) is NOT the one in {known}: "
            "it changed, or this is not your primary; check before editing known_hosts"
        )
    _show(a, key)
    if accept is not None:
        if accept.strip() != key.fingerprint:
            raise InitError(f"--accept-host-key {accept} does not match {key.fingerprint}")
    elif asker.yes:
        raise InitError(
            f"{a.host}'s host key is not in {known}: compare {key.fingerprint} on the primary "
            f"({key.compare_command()}), then pass --accept-host-key {key.fingerprint}"
        )
    elif not click.confirm("Is it the same fingerprint?", default=False):
        raise InitError("host key not confirmed: nothing added, nothing written")
    init_ssh.add_known_host(known, a.host, a.port, key)
    click.echo(f"added {a.host}'s {key.kind} key to {known}")


def _show(a: Answers, key: HostKey) -> None:
    click.echo(f"{a.host}:{a.port} presents the {key.kind} host key {key.fingerprint}")
    click.echo(f"   compare it on the primary: {key.compare_command()}")


def _standby(asker: Asker, o: Mapping[str, Any], a: Answers, env: Mapping[str, str]) -> None:
    home = Path(env.get("HOME") or Path.home())
    try:
        text = (home / ".openclaw" / "openclaw.json").read_text(encoding="utf-8")
    except OSError:
        text = ""
    port = init_ssh.gateway_port(text) or DEFAULT_PORT
    start, stop, fallback = local_gateway(env, port)
    unit = home / ".config" / "systemd" / "user" / init_ssh.GATEWAY_UNIT
    if o["standby_start_command"] is None and not unit.is_file():
        click.echo(f"   note: no {unit} here; check the proposed start/stop commands")
    url = f"http://127.0.0.1:{port}/"
    a.standby_name = asker.ask("Name of this standby", o["standby_name"], "standby") or "standby"
    a.standby_health_url = asker.ask("This host's gateway URL", o["standby_health_url"], url) or url
    a.standby_start = asker.ask("Command that starts it", o["standby_start_command"], start) or ""
    a.standby_stop = asker.ask("Command that stops it", o["standby_stop_command"], stop) or ""
    a.standby_fallback = fallback if o["standby_start_command"] is None else None
    a.telegram_token = asker.secret(
        "Telegram bot token (blank: no notices)", o["telegram_token"] or env.get(TOKEN_VAR)
    )
    if a.telegram_token:
        a.chat_id = asker.ask("Telegram chat id", o["chat_id"])
        a.telegram_base_url = o["telegram_base_url"]
    if not (a.telegram_token and a.chat_id):
        click.echo("   no Telegram token and chat id: notices are only logged")
    a.state_dir = o["state_dir"]


def _database(asker: Asker, o: Mapping[str, Any], a: Answers, env: Mapping[str, str]) -> None:
    if o["no_database"]:
        return
    dsn = asker.ask("This host's memU database (libpq)", o["standby_dsn"], "dbname=memu")
    if not dsn:
        return
    given = bool(o["primary_dsn"] and o["subscription"])
    try:
        found = None if given else find_subscription(dsn)
    except InitError as exc:
        if o["standby_dsn"]:
            raise InitError(
                f"{exc} (reading pg_subscription needs a superuser; or pass "
                "--primary-dsn and --subscription, or --no-database)"
            ) from None
        click.echo(f"   no database: section ({exc})")
        return
    if found is None and not (o["primary_dsn"] and o["subscription"]):
        click.echo(f"   no subscription in {dsn}: no database: section (sync-back off)")
        return
    primary, password = primary_dsn_from(found[1]) if found else (None, None)
    a.standby_dsn = dsn
    a.subscription = o["subscription"] or (found[0] if found else None)
    a.primary_dsn = o["primary_dsn"] or primary
    a.db_password = password or env.get(DB_PASSWORD_VAR)
    click.echo(f"ok: subscription {a.subscription} on the standby; primary: {a.primary_dsn}")


def _files(o: Mapping[str, Any], a: Answers) -> None:
    if o["no_files"]:
        return
    for item in o["files"]:
        local, sep, remote = item.partition("=")
        if not sep or not local or not remote:
            raise InitError(f"--file {item!r}: expected LOCAL=REMOTE")
        a.files.append((local, remote))
    if not o["files"]:
        a.files = default_files(Path.home())


def _doctor(cfg: Any, env: Mapping[str, str], path: Path, *, send_test: bool) -> None:
    from openclaw_failover.ops.doctor.run import run_doctor

    click.echo("\nocf doctor:")
    report = run_doctor(cfg, env=env, config_path=path, send_test=send_test)
    click.echo(report.render())
    click.echo(report.summary())
    if not report.ok:
        _next_steps(path)
        raise Failed("doctor found problems")


def _next_steps(path: Path) -> None:
    ocf = "ocf" + (f" --config {path}" if path != config_path(None, {}) else "")
    env_file = path.parent / "env"
    click.echo(
        "\nnext steps:\n"
        f"  1. in your shell, load the env file: set -a; . {env_file}; set +a\n"
        f"  2. fix any FAIL above, then: {ocf} doctor"
        f"   ({ocf} doctor --send-test sends a Telegram test message)\n"
        f"  3. install the schedule (step 6): {ocf} install systemd   (or: {ocf} install cron)\n"
        f"  4. a real failover test: {ocf} drill"
    )


@cli.group("config")
def config_group() -> None:
    """The configuration file."""


@config_group.command("example")
def config_example() -> None:
    """Print the example config (every key documented): ocf config example > config.yaml"""
    from importlib.resources import files

    text = files("openclaw_failover.config").joinpath("example.yaml").read_text(encoding="utf-8")
    click.echo(text, nl=False)
