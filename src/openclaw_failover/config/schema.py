"""Every config key: its type, default, range and help text (the one source).

The loader's dataclasses take their defaults from here (:func:`default`);
``config.example.yaml`` and the README's key reference are rendered from here by
:mod:`openclaw_failover.config.example` (``make config-docs``; tests check both are
current).  A key's ``doc`` is its one-line help, ``note`` the prose shown above it in
the example, ``example`` the value the example shows when it is not the default.
"""

from __future__ import annotations

from typing import Any

from openclaw_failover.config.coordination import COORDINATION
from openclaw_failover.config.validate import (
    SAME,
    Command,
    Key,
    ListOf,
    Schema,
    Section,
    check_default,
)

__all__ = ["DEFAULT_MESSAGES", "SCHEMA", "Command", "default", "key"]

DEFAULT_STATE_DIR = "~/.local/state/openclaw-failover"
TELEGRAM_BASE_URL = "https://api.telegram.org/bot"

# Notice kinds, their default texts and what each one says (the key's help text).
# Fields available to every template: {primary} {standby} {reason} {time} {detail}
NOTICES: dict[str, tuple[str, str]] = {
    "took_over": (
        "OpenClaw on {primary} OFFLINE - {standby} takes over! ({reason}; {time}) {detail}",
        "the primary failed; the standby serves now",
    ),
    "gave_back": (
        "{primary} ONLINE - {standby} stopped, gateway back on {primary}. {detail} ({time})",
        "give-back done",
    ),
    "failover_failed": (
        "FAILOVER FAILED - {standby} could not start the gateway! {detail} ({time})",
        "the standby could not start its gateway",
    ),
    "giveback_failed": (
        "GIVE-BACK FAILED - {standby} keeps serving. {detail} ({time})",
        "the standby could not hand the gateway back",
    ),
    "syncback_failed": (
        "SYNC-BACK FAILED - data stays on {standby}, retrying every check. {detail} ({time})",
        "rows or files could not be synced back",
    ),
    "auth_failure": (
        "ALERT: {standby} cannot check {primary}: {detail}. "
        "Not failing over; fix SSH access. ({time})",
        "the standby cannot check the primary (SSH access)",
    ),
    "two_gateways": (
        "WARNING: {primary} serves, but a gateway also answers on {standby}: "
        "two bots may poll Telegram. ocf did not start it; stop it. ({time})",
        "a gateway ocf did not start answers on the standby",
    ),
    "primary_back": (
        "{primary} is reachable again; failback is manual: "
        "run 'ocf release' on {standby}. ({time})",
        "the primary is back and failback is manual",
    ),
    "both_serving": (
        "TWO BOTS - {primary}'s gateway served again while {standby}'s still "
        "answered; ocf stopped one of them. ({reason}; {time})",
        "both gateways served after a partition",
    ),
    "isolated": (
        "{standby} was cut off and did NOT take over from {primary}: {reason}. {detail} ({time})",
        "no takeover because too few witnesses answered",
    ),
    # coordination (etcd): {detail} names the host the notice is about
    "leader_changed": (
        "Leader is now {detail}: it serves the gateway. ({reason}; {time})",
        "coordination: a host took the leader key",
    ),
    "coordinator_lost": (
        "{detail} cannot reach an etcd quorum. ({reason}; {time})",
        "coordination: no etcd quorum, nobody changes role",
    ),
    "fenced_self": (
        "{detail} FENCED ITSELF - it could not refresh its leader key, its gateway "
        "is stopped. ({reason}; {time})",
        "coordination: the primary stopped its own gateway",
    ),
}
DEFAULT_MESSAGES: dict[str, str] = {kind: text for kind, (text, _) in NOTICES.items()}
TEMPLATE_FIELDS = frozenset({"primary", "standby", "reason", "time", "detail"})

PREAMBLE = """\
openclaw-failover (ocf) configuration.

Looked for at: --config PATH, then $OCF_CONFIG, then
~/.config/openclaw-failover/config.yaml, then /etc/openclaw-failover/config.yaml.
${VAR} in any value is replaced from the environment (keep secrets out of this file).
Unknown keys are errors. Check a config with:  ocf doctor  (or ocf check --dry-run)
This file ships with ocf:  ocf config example > config.yaml  (or run ocf init)
Refused, each with one line and exit 2: duplicate keys, YAML aliases (*name),
nesting deeper than 32, files over 1 MiB or not UTF-8; control characters in any
value (a notice template may hold newlines and tabs); numbers that are not finite
or out of range (ports 1-65535; network timeouts at most 600 s, command timeouts
and retry_delay 3600 s, deadline and interval 86400 s, alert_interval 31 days,
retries 100, fall/rise 10000); URLs without http(s)://, a host and a valid port.
Secrets are masked everywhere, also in config errors: telegram.token, database
passwords, the path and query of monitoring.ping_url, and every ${VAR} whose name
holds TOKEN, PASSWORD, SECRET or KEY.
A command is a string (split like a shell would, never run through a shell)
or a list of arguments."""

SSH = Section(
    {
        "user": Key("str", "SSH user on the primary", required=True, example="marek"),
        "port": Key("int", "SSH port", 22, minimum=1, maximum=65535),
        "key_file": Key("path", "unencrypted private key", "~/.ssh/id_ed25519", must_exist=True),
        "known_hosts": Key(
            "path",
            "known_hosts holding the primary's host key",
            "~/.ssh/known_hosts",
            must_exist=True,
            note="The primary's host key must already be in this file: ocf never adds keys.\n"
            "  ssh-keyscan -p 22 192.168.0.199 >> ~/.ssh/known_hosts   (then verify it!)",
        ),
        "connect_timeout": Key(
            "number",
            "seconds for TCP connect, SSH banner and auth",
            10,
            minimum=0.1,
            maximum=600,
        ),
        "command_timeout": Key(
            "number", "seconds a command run over SSH may take", 30, minimum=0.1, maximum=3600
        ),
    }
)

PRIMARY = Section(
    {
        "name": Key("str", "used in messages", "primary", example="Mac Studio"),
        "host": Key("str", "address of the primary", required=True, example="192.168.0.199"),
        "ssh": SSH,
        "gateway": Section(
            {
                "health_url": Key(
                    "url",
                    "the gateway URL as seen on the primary",
                    "http://127.0.0.1:18789/healthz",
                    note="The gateway listens on the primary's loopback: ocf opens an SSH\n"
                    "direct-tcpip channel to it; if the primary's sshd refuses forwarding it\n"
                    "runs curl there instead. Any HTTP answer below 500 (404 too) means alive.\n"
                    "/healthz (or /health) is OpenClaw's liveness endpoint: a small JSON answer,"
                    " where\n/ is the 18 KB Control UI page. /readyz answers 503 while the"
                    " gateway starts.",
                ),
                "stop_command": Key(
                    "command",
                    "run over SSH to fence a half-alive primary",
                    example="openclaw gateway stop --force",
                    note="Optional, run over SSH when the primary's SSH works but its gateway"
                    " does not:\nfences a half-alive primary so two bots never poll Telegram at"
                    ' once. It must work\nunattended (README "Gateway commands"):\n'
                    "  macOS LaunchAgent (KeepAlive restarts a merely stopped gateway, so"
                    " disable it):\n"
                    "    stop_command: launchctl bootout gui/501/ai.openclaw.gateway\n"
                    "    start_command: launchctl bootstrap gui/501"
                    " /Users/marek/Library/LaunchAgents/ai.openclaw.gateway.plist\n"
                    "  Linux systemd user unit:\n"
                    "    stop_command: systemctl --user stop openclaw-gateway.service\n"
                    "    start_command: systemctl --user start openclaw-gateway.service\n"
                    "  no service manager (`openclaw gateway run`); without --force"
                    " `gateway stop`\n  exits 1 when not run from a terminal:",
                ),
                "start_command": Key(
                    "command",
                    "run over SSH at give-back when ocf fenced the primary",
                    example="openclaw gateway start",
                    note="Optional. `gateway start` needs a service-manager install; for a bare"
                    " `gateway run`\nstart it detached:\n"
                    "  start_command: sh -c 'setsid openclaw gateway run >>"
                    " ~/.openclaw/gateway-run.log 2>&1 < /dev/null &'",
                ),
            }
        ),
    }
)

STANDBY = Section(
    {
        "name": Key("str", "used in messages", "standby", example="RPi"),
        "gateway": Section(
            {
                "health_url": Key(
                    "url", "the local gateway's URL", "http://127.0.0.1:18789/healthz"
                ),
                "ready_url": Key(
                    "url",
                    "readiness URL checked after a takeover (default: health_url's, path /readyz)",
                    example="http://127.0.0.1:18789/readyz",
                    commented=True,
                    note="After a takeover ocf waits (within start_timeout) until the gateway is"
                    " ready, not\nonly answering: /readyz 200. A 404 means the gateway has none;"
                    ' "not ready"\ngoes into the takeover notice.',
                ),
                "start_command": Key(
                    "command",
                    "starts the local gateway",
                    "systemctl --user start openclaw-gateway.service",
                    note="ocf fills in XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS for"
                    " systemctl --user\nwhen cron leaves them out.",
                ),
                "fallback_start_command": Key(
                    "command",
                    "direct start when start_command fails",
                    example="openclaw gateway run --port 18789",
                    note="Optional: started fully detached (own session, output to"
                    " state_dir/gateway.log,\npid and start time in state_dir/gateway.pid);"
                    " stopped by that pid (SIGTERM to its\nprocess group, SIGKILL after"
                    " stop_timeout), whatever the process renames itself to\n(`gateway run`"
                    " becomes `openclaw-gateway`).",
                ),
                "stop_command": Key(
                    "command",
                    "stops the local gateway",
                    "systemctl --user stop openclaw-gateway.service",
                ),
                "start_timeout": Key(
                    "number",
                    "seconds to wait for the local gateway to answer (the real one answers"
                    " after about 8-16 s, a loaded Pi may take 45)",
                    60,
                    minimum=0,
                    maximum=3600,
                ),
                "stop_timeout": Key(
                    "number",
                    "seconds to wait for it to stop answering",
                    30,
                    minimum=0,
                    maximum=3600,
                ),
                "command_timeout": Key(
                    "number", "seconds start/stop commands may run", 30, minimum=0.1, maximum=3600
                ),
            }
        ),
    }
)

CHECK = Section(
    {
        "retries": Key(
            "int", "extra probes after a failed one, within one check", 1, minimum=0, maximum=100
        ),
        "retry_delay": Key(
            "number", "seconds between the probes of one check", 10, minimum=0, maximum=3600
        ),
        "fall": Key("int", "failed checks before taking over", 1, minimum=1, maximum=10000),
        "rise": Key("int", "healthy checks before giving back", 1, minimum=1, maximum=10000),
        "failback": Key(
            "choice",
            "auto | manual (manual: give back with `ocf release`)",
            "auto",
            choices=("auto", "manual"),
        ),
        "probe_timeout": Key(
            "number", "seconds for one HTTP health request", 5, minimum=0.1, maximum=600
        ),
        "deadline": Key(
            "number",
            "a whole check is aborted after this (keep it below the interval)",
            100,
            minimum=1,
            maximum=86400,
        ),
        "alert_interval": Key(
            "number",
            "seconds between repeats of the same alert",
            3600,
            minimum=0,
            maximum=31 * 86400,
        ),
        "interval": Key(
            "number",
            "how often cron / the timer runs `ocf check` (120 for the cron sample, 30 for the"
            " systemd timer): status, doctor (`ocf watch` checks every --interval, default 2 s)",
            120,
            minimum=1,
            maximum=86400,
        ),
        "slow_fall": Key(
            "int",
            "checks in a row without a healthy answer, starting with a slow one, before taking"
            " over (at least 2)",
            5,
            minimum=2,
            maximum=10000,
            note="A probe is classified: never answered (no route, connect timeout, no SSH"
            " banner) or\nrefused counts towards `fall`. Answered-then-slow (the banner came or"
            " the host key was\nverified, then a later step timed out; or the gateway's channel"
            " / HTTP answer timed\nout) is retried with twice the budget and counts only towards"
            " `slow_fall`, and a\ntakeover after slow checks never fences the primary (a slow"
            " gateway is a live one).",
        ),
        "witnesses": Key(
            "strlist",
            "host:port (TCP connect) or http(s) URLs this standby must reach",
            [],
            example=["192.168.0.1:80", "api.telegram.org:443"],
            commented=True,
            note="Isolation awareness: before taking over, this standby must reach at least\n"
            "`witness_quorum` of these (host:port = a TCP connection is accepted; http(s)"
            " URL = any\nHTTP answer). A standby that is itself cut off then does not start a"
            ' second bot; it\nrecords why and sends an "isolated" notice once it is back'
            " online. Trade-off: when all\nwitnesses are down together with the primary (same"
            " switch, same power), no takeover.\nFor example the LAN router's web interface"
            " (192.168.0.1:80), and Telegram (useless\nto take over if it cannot be reached):",
        ),
        "witness_quorum": Key(
            "int",
            "witnesses that must answer before a takeover (default 1 when witnesses are set)",
            minimum=1,
            maximum=100,
            example=1,
            commented=True,
        ),
        "witness_timeout": Key(
            "number", "seconds per witness (all are asked at once)", 2, minimum=0.1, maximum=60
        ),
        "handoff_delay": Key(
            "number",
            "seconds between stopping this standby's gateway and restarting the fenced"
            " primary's at give-back (covers Telegram's stale long poll; 0 = none)",
            0,
            minimum=0,
            maximum=600,
        ),
    }
)

TELEGRAM = Section(
    {
        "token": Key(
            "str",
            "the bot token, from the environment",
            required=True,
            secret=True,
            example="${OCF_TELEGRAM_TOKEN}",
        ),
        "chat_id": Key("chat", "numeric chat id, or @channelname", required=True, example=123456),
        "base_url": Key("url", "everything before the token", TELEGRAM_BASE_URL),
        "timeout": Key("number", "seconds per Bot API request", 10, minimum=0.1, maximum=600),
    },
    note="Optional: without it, notices are only logged.",
    optional=True,
)

MESSAGES = Section(
    {
        kind: Key(
            "str",
            f"notice: {what}",
            text,
            multiline=True,
            example=SAME if kind == "took_over" else ...,
            commented=kind != "took_over",
        )
        for kind, (text, what) in NOTICES.items()
    },
    note="Optional: override any notice text. Fields: {primary} {standby} {reason} {time}"
    " {detail}\n(plain fields only: no format spec such as {time:>20}; at most 4096"
    " characters).",
    optional=True,
)

MONITORING_NOTE = """\
Optional: who watches the watchdog. GET after every check that ran, URL + "/fail" after
one that failed (the healthchecks.io convention; Uptime Kuma push monitors work too).
Uncomment and put your own check's URL."""

DATABASE = Section(
    {
        "primary_dsn": Key(
            "str",
            "libpq conninfo or URL of the primary's memu",
            required=True,
            example="host=192.168.0.199 port=5432 dbname=memu user=memu password=${MEMU_PASSWORD}",
            note="Passwords via ${VAR} or ~/.pgpass, never in this file.\n"
            "The primary's user needs REPLICATION (a new logical slot is created at give-back)\n"
            "and write access to the tables. Through an SSH tunnel instead of the LAN:\n"
            "  ssh -fNL 15432:127.0.0.1:5432 marek@192.168.0.199   then host=127.0.0.1"
            " port=15432",
        ),
        "standby_dsn": Key(
            "str",
            "libpq conninfo or URL of the standby's memu",
            required=True,
            example="host=127.0.0.1 port=5433 dbname=memu user=postgres",
            note="The standby's user must own the subscription (a superuser on PostgreSQL 15).",
        ),
        "subscription": Key("str", "the subscription on the standby", "memu_sub"),
        "tables": Key(
            "strlist",
            "tables to sync (default: every table the subscription's publications carry)",
            [],
        ),
        "connect_timeout": Key(
            "number", "seconds to connect to either database", 10, minimum=1, maximum=600
        ),
        "quarantine_days": Key(
            "number",
            "days the rows sync-back replaced or deleted are kept",
            30,
            minimum=1,
            maximum=3650,
        ),
        "quarantine_max_mb": Key(
            "number",
            "MB the quarantine folder stays under (oldest batches go first)",
            1024,
            minimum=1,
            maximum=1048576,
        ),
    },
    note="Optional: sync-back of the memory database (memu). Without it rows are not synced\n"
    "back (notices and `ocf status` say so). At takeover the standby's subscription is\n"
    "disabled; at give-back the standby's rows are merged into the primary in one\n"
    "transaction, the standby is made equal to the primary, and its subscription is\n"
    'pointed at a fresh slot past the merge (see README "Sync-back").',
    optional=True,
)

SCHEMA: Schema = {
    "primary": PRIMARY,
    "standby": STANDBY,
    "check": CHECK,
    "telegram": TELEGRAM,
    "messages": MESSAGES,
    "state_dir": Key(
        "path", "folder of state.json, events.jsonl, ocf.log, gateway.log", DEFAULT_STATE_DIR
    ),
    "metrics": Section(
        {
            "textfile": Key(
                "path",
                "Prometheus textfile written after each check (node_exporter)",
                example="/var/lib/prometheus/node-exporter/ocf.prom",
            ),
        },
        note="Optional: Prometheus metrics, written atomically after each check in"
        ' node_exporter\'s\ntextfile collector format (see README "Monitoring"). Uncomment to'
        " use; the folder\nmust exist and be writable (`ocf doctor` checks it).",
        optional=True,
        commented=True,
    ),
    "monitoring": Section(
        {
            "ping_url": Key(
                "url",
                "dead-man's-switch URL pinged after each check",
                secret=True,
                example="https://hc-ping.com/your-check-uuid",
            ),
            "ping_timeout": Key(
                "number",
                "seconds for the ping; a failed ping never fails the check",
                5,
                minimum=0.1,
                maximum=600,
            ),
        },
        note=MONITORING_NOTE,
        optional=True,
        commented=True,
    ),
    "coordination": COORDINATION,
    "database": DATABASE,
    "files": ListOf(
        {
            "path": Key("path", "file or folder on the standby", required=True),
            "remote_path": Key("str", "the same on the primary", required=True),
        },
        "workspace files synced back standby -> primary",
        note="Optional: workspace files copied standby -> primary at give-back (rsync over SSH,\n"
        "same key and known_hosts as the probe; rsync needed on both hosts). A file changed\n"
        "on both sides is never overwritten: the standby's copy lands beside the primary's\n"
        "as NAME.standby-<UTC time>.",
        example=(
            {
                "path": "~/.openclaw/workspace/memory/",
                "remote_path": "~/.openclaw/workspace/memory/",
            },
            {
                "path": "~/.openclaw/workspace/MEMORY.md",
                "remote_path": "~/.openclaw/workspace/MEMORY.md",
            },
        ),
    ),
}


def key(path: str) -> Key:
    """The key at a dotted path (``check.retries``; ``files.path`` for a list's items)."""
    node: Key | ListOf | Section = Section(SCHEMA)
    for part in path.split("."):
        if isinstance(node, Section):
            node = node.keys[part]
        elif isinstance(node, ListOf):
            node = node.item[part]
        else:
            raise KeyError(path)
    if not isinstance(node, Key):
        raise KeyError(f"{path} is a section, not a key")
    return node


def default(path: str) -> Any:
    """The default of the key at ``path``, as the loader builds it (``10`` -> ``10.0`` for a
    number, a command split into a tuple, a path expanded): the dataclasses' defaults."""
    return check_default(key(path))
