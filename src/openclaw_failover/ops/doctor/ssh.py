"""`ocf doctor`: the ssh and rsync groups (what `ocf check` and the sync-back need from the primary).

One SSH connection answers: the host key, the login, and the programs the
fallback probe, the fence and the file sync run there (``command -v PROG``:
nothing is ever run but the lookup; the stop command itself never).  The
health URL is then probed exactly as `ocf check` probes it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import paramiko

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import describe
from openclaw_failover.core.model import ProbeResult, ProbeStatus
from openclaw_failover.ops.doctor.base import DoctorContext, Lookup, RemoteFacts, Sink
from openclaw_failover.primary import remote
from openclaw_failover.primary.probe import CURL, probe_primary

COMMAND_TIMEOUT_MAX = 10.0  # seconds for one `command -v` over SSH
_CURL_FIX = (
    "install curl on the primary (Debian: apt-get install curl; macOS ships it), "
    "in the PATH a non-interactive SSH login gets"
)
_RSYNC_FIX = (
    "install rsync on the primary (Debian: apt-get install rsync; macOS: brew install rsync)"
)


def command_timeout(cfg: Config) -> float:
    return min(cfg.primary.ssh.command_timeout, COMMAND_TIMEOUT_MAX)


def budget(cfg: Config) -> float:
    """Seconds the ssh group may take: two logins, the probe and a few lookups."""
    ssh = cfg.primary.ssh
    return 2 * ssh.connect_timeout + cfg.check.probe_timeout + 10 + 6 * command_timeout(cfg)


# --------------------------------------------------------------------------- ssh


def check_ssh(ctx: DoctorContext, out: Sink) -> None:
    try:
        _check_ssh(ctx, out)
    finally:
        ctx.ssh_done.set()  # the rsync group waits for ctx.remote


def _check_ssh(ctx: DoctorContext, out: Sink) -> None:
    cfg = ctx.cfg
    try:
        client = remote.connect(cfg)
    except remote.RemoteError as err:
        _connect_failed(cfg, out, err)
        out.skip("health URL, curl and fencing not checked: no SSH session")
        return
    try:
        _logged_in(cfg, out, client)
        ctx.remote = _remote_facts(ctx, client)
    finally:
        with contextlib.suppress(Exception):
            client.close()
    probe = probe_primary(cfg, ctx.mask)  # exactly what `ocf check` does, own connection
    _health(ctx, out, probe)
    _curl(ctx, out, probe)
    _fencing(ctx, out)


def _connect_failed(cfg: Config, out: Sink, err: remote.RemoteError) -> None:
    ssh = cfg.primary.ssh
    host, port, kh, key = cfg.primary.host, ssh.port, ssh.known_hosts, ssh.key_file
    name = remote.known_hosts_name(host, port)
    detail = err.detail
    if detail.startswith("host key CHANGED"):
        out.fail(
            detail,
            f"verify the primary's new key out of band, then: ssh-keygen -R '{name}' -f {kh} "
            f"&& ssh-keyscan -p {port} {host} >> {kh}",
        )
    elif detail.startswith("host key"):
        out.fail(
            detail,
            f"ssh-keyscan -p {port} {host} >> {kh}, then compare `ssh-keygen -lf {kh}` with "
            "the fingerprint shown on the primary",
        )
    elif detail.startswith("key rejected"):
        out.ok(f"host key for {name} matches known_hosts {kh}")
        out.fail(
            detail,
            f"authorize the key on the primary: ssh-copy-id -i {key}.pub -p {port} "
            f"{ssh.user}@{host} (or append {key}.pub to ~{ssh.user}/.ssh/authorized_keys there)",
        )
    elif "passphrase" in detail:
        out.fail(detail, f"ssh-keygen -p -N '' -f {key} (ocf runs unattended)")
    elif "key file" in detail:
        out.fail(
            detail,
            f"point primary.ssh.key_file at a readable, unencrypted private key "
            f"(new one: ssh-keygen -t ed25519 -N '' -f {key})",
        )
    elif err.status is ProbeStatus.AUTH_FAILED:
        out.fail(detail, "check primary.ssh (user, key_file) and the primary's sshd_config")
    else:
        out.fail(
            f"cannot reach the primary: {detail}",
            f"check that {host} is up and sshd listens on port {port} "
            f"(from this standby: nc -vz {host} {port})",
        )


def _logged_in(cfg: Config, out: Sink, client: paramiko.SSHClient) -> None:
    ssh = cfg.primary.ssh
    name = remote.known_hosts_name(cfg.primary.host, ssh.port)
    transport = client.get_transport()
    key = transport.get_remote_server_key() if transport is not None else None
    shown = f" ({key.get_name()} {key.fingerprint})" if key is not None else ""
    out.ok(f"host key for {name} matches known_hosts {ssh.known_hosts}{shown}")
    out.ok(f"key accepted: {ssh.user}@{remote.endpoint(cfg)} logs in with {ssh.key_file}")


def _remote_facts(ctx: DoctorContext, client: paramiko.SSHClient) -> RemoteFacts:
    cfg = ctx.cfg
    wanted = ["curl", *(["rsync"] if cfg.files else [])]
    gw = cfg.primary.gateway
    wanted += [cmd[0] for cmd in (gw.stop_command, gw.start_command) if cmd]
    facts = RemoteFacts()
    for program in dict.fromkeys(wanted):
        facts.tools[program] = _which_remote(ctx, client, program)
    if cfg.files:
        facts.sftp_error = _sftp_problem(client)
    return facts


def _which_remote(ctx: DoctorContext, client: paramiko.SSHClient, program: str) -> Lookup:
    """``command -v PROGRAM`` through the login shell, as the probe's curl would be found."""
    res = remote.run_remote(
        ctx.cfg,
        ["command", "-v", program],
        timeout=command_timeout(ctx.cfg),
        mask=ctx.mask,
        client=client,
    )
    if res.error or res.timed_out:
        return Lookup(error=res.summary())
    lines = res.stdout.strip().splitlines()
    if res.returncode == 0 and lines:
        return Lookup(path=lines[0].strip())
    return Lookup()


def _sftp_problem(client: paramiko.SSHClient) -> str | None:
    try:
        client.open_sftp().close()
    except Exception as exc:
        return describe(exc)
    return None


def _health(ctx: DoctorContext, out: Sink, probe: ProbeResult) -> None:
    url = ctx.cfg.primary.gateway.health_url
    via = f"{probe.detail}, {probe.latency:.2f}s"
    if probe.status is ProbeStatus.HEALTHY:
        if probe.method == CURL and not url.startswith("https:"):
            out.warn(
                f"health URL {url} answers only through curl: the primary's sshd refuses "
                f"port forwarding ({via})",
                "set 'AllowTcpForwarding local' in the primary's sshd_config and reload sshd "
                "(the direct channel runs nothing there and is faster)",
            )
        else:
            out.ok(f"health URL {url} answers through the SSH channel ({via})")
        return
    if probe.status is ProbeStatus.GATEWAY_DOWN and ctx.serving:
        out.warn(
            f"health URL {url} does not answer ({probe.detail}): expected while this standby serves",
            "nothing to do: ocf gives back once it answers again",
        )
        return
    fixes = {
        ProbeStatus.GATEWAY_DOWN: "start the gateway on the primary, or correct "
        f"primary.gateway.health_url as seen on the primary (there: curl -si {url})",
        ProbeStatus.PROBE_ERROR: "set 'AllowTcpForwarding local' in the primary's sshd_config, "
        "or install curl on the primary",
    }
    fix = fixes.get(probe.status, "see the ssh checks above; run `ocf check --dry-run -v`")
    out.fail(f"health URL {url}: {probe.status}: {probe.detail}", fix)


def _curl(ctx: DoctorContext, out: Sink, probe: ProbeResult) -> None:
    found = ctx.remote.tools.get("curl", Lookup()) if ctx.remote else Lookup(error="no session")
    https = ctx.cfg.primary.gateway.health_url.startswith("https:")
    if found.path:
        role = "the probe of an https health URL" if https else "the probe's fallback"
        out.ok(f"curl on the primary: {found.path} ({role})")
        return
    if found.error:
        out.warn(f"cannot tell whether curl is on the primary: {found.error}", _CURL_FIX)
        return
    text = "curl not found on the primary (PATH of a non-interactive SSH login)"
    if https:
        out.fail(text + ": an https health URL is probed with curl", _CURL_FIX)
    elif probe.method == CURL or probe.status is ProbeStatus.PROBE_ERROR:
        out.fail(text + ": forwarding is refused too, so nothing can probe the gateway", _CURL_FIX)
    else:
        out.warn(text + ": no fallback if the primary's sshd stops allowing forwarding", _CURL_FIX)


def _fencing(ctx: DoctorContext, out: Sink) -> None:
    gw = ctx.cfg.primary.gateway
    if gw.stop_command is None:
        out.warn(
            "no primary.gateway.stop_command: a half-alive primary (SSH up, gateway failing) "
            "is not fenced and may keep polling Telegram after a takeover",
            "set primary.gateway.stop_command, e.g. 'systemctl --user stop "
            "openclaw-gateway.service' (macOS: 'launchctl bootout gui/<uid>/<label>')",
        )
        return
    _remote_program(ctx, out, "stop_command", gw.stop_command[0], "fencing")
    if gw.start_command is None:
        out.warn(
            "no primary.gateway.start_command: a fenced primary's gateway is not restarted "
            "at give-back",
            "set primary.gateway.start_command, e.g. 'systemctl --user start "
            "openclaw-gateway.service'",
        )
    else:
        _remote_program(ctx, out, "start_command", gw.start_command[0], "restart after fencing")


def _remote_program(ctx: DoctorContext, out: Sink, key: str, program: str, role: str) -> None:
    found = ctx.remote.tools.get(program, Lookup()) if ctx.remote else Lookup(error="no session")
    if found.path:
        where = "exists" if found.path == program else f"resolves to {found.path}"
        out.ok(f"primary.gateway.{key} ({role}): {program} {where} on the primary (not run)")
    elif found.error:
        out.warn(
            f"cannot check primary.gateway.{key}: {found.error}",
            f"run `command -v {program}` on the primary by hand",
        )
    else:
        out.fail(
            f"primary.gateway.{key} ({role}) cannot run: {program} is not found on the primary "
            "(PATH of a non-interactive SSH login)",
            f"install {program} there, or give its full path in primary.gateway.{key}",
        )


# --------------------------------------------------------------------------- rsync


def check_rsync(ctx: DoctorContext, out: Sink) -> None:
    cfg = ctx.cfg
    if not cfg.files:
        out.skip("no files: section: workspace files are not synced back")
        return
    missing = [t for t in ("rsync", "ssh") if shutil.which(t, path=ctx.path) is None]
    if missing:
        out.fail(
            f"{' and '.join(missing)} not found on this standby (PATH={ctx.path})",
            "apt-get install rsync openssh-client",
        )
    else:
        out.ok(f"rsync on this standby: {shutil.which('rsync', path=ctx.path)}")
    for root in cfg.files:
        if not Path(root.path).exists():
            out.warn(
                f"files: {root.path} does not exist on this standby",
                f"create it, or correct files[].path ({root.path})",
            )
    if not ctx.ssh_done.wait(budget(cfg)) or ctx.remote is None:
        out.skip("rsync and SFTP on the primary not checked: no SSH session (see ssh)")
        return
    _remote_rsync(ctx.remote, out)


def _remote_rsync(facts: RemoteFacts, out: Sink) -> None:
    found = facts.tools.get("rsync", Lookup())
    if found.path:
        out.ok(f"rsync on the primary: {found.path}")
    elif found.error:
        out.warn(f"cannot tell whether rsync is on the primary: {found.error}", _RSYNC_FIX)
    else:
        out.fail(
            "rsync not found on the primary (PATH of a non-interactive SSH login): "
            "files: cannot be synced back",
            _RSYNC_FIX,
        )
    if facts.sftp_error is None:
        out.ok("SFTP on the primary works (file comparison)")
    else:
        out.fail(
            f"SFTP on the primary refused: {facts.sftp_error}",
            "enable a 'Subsystem sftp' line in the primary's sshd_config "
            "(e.g. 'Subsystem sftp internal-sftp') and reload sshd",
        )
