"""The README's setup, run word for word on a new account against the sandbox.

The README's "Install on the standby" blocks (marked ``<!-- docs-test: NAME -->``)
run as a throwaway unix user, each in a new login shell, from the wheel built from
this tree to ``ocf doctor`` exit 0: by hand (keys, install, config example,
known_hosts, env file, dry-run check, doctor) and with ``ocf init --yes``.  The
sandbox (real OpenSSH sshd, two PostgreSQL clusters with real logical replication,
the stand-in gateways, the fake Bot API; started by root in a directory the user can
reach) plays the Mac.  Every substitution is in the tables below:

- the Mac's address, SSH user and port, its host key's fingerprint, the chat id, the
  bot token, the standby's DSN: the sandbox's values;
- ``ssh-copy-id`` (it needs the Mac's password, which the sandbox has none of): the
  test appends the new public key to the sandbox's ``authorized_keys``, which is
  what ssh-copy-id does on the primary;
- the user runs the install block in the folder that holds the wheel, and pip takes
  the dependencies from a wheelhouse the test fills (``PIP_FIND_LINKS``,
  ``PIP_NO_INDEX``: fast, no network for the new account);
- "edit it": :data:`CONFIG_EDITS`, the sandbox's values for the keys the README
  names; ``ocf init`` gets the flags only a sandbox needs (its ports and its unit
  commands instead of launchctl/systemctl) appended.

Step 3 (PostgreSQL on both hosts) is what the sandbox builds itself.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from openclaw_failover.sandbox import ocfconfig, postgres, ssh
from openclaw_failover.sandbox.postgres import INSTALL_HINT
from openclaw_failover.sandbox.telegram import DEFAULT_TOKEN
from tests.harness import readme_steps
from tests.harness.readme_steps import FreshUser, blocks, substitute

ROOT = Path(__file__).resolve().parents[2]
MAC, MAC_USER = "192.168.0.199", "marek"
USER_PYTHON = "/usr/bin/python3"  # the new user's `python3` (a login's PATH)
SETUP = ("setup-keys", "setup-install", "setup-config", "setup-check", "setup-init")


def test_readme_marks_the_setup_blocks() -> None:
    """The blocks the user follows are marked, once each, in the order a user runs them."""
    found = blocks()
    assert tuple(n for n in found if n.startswith("setup-")) == SETUP
    assert found["setup-check"].rstrip().splitlines()[-1].startswith("ocf doctor")
    assert found["setup-init"].rstrip().splitlines()[-1] == "ocf doctor"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    why = readme_steps.unavailable()
    if why:
        pytest.skip(why)
    if not (postgres.embedded_bin_dir() is not None or os.environ.get("OCF_PG_BIN")):
        pytest.skip(INSTALL_HINT)
    if not ssh.openssh_available():
        pytest.skip("OpenSSH sshd not installed (apt-get install openssh-server)")
    for tool in ("ssh-keygen", "ssh-keyscan", "rsync"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (apt-get install openssh-client rsync)")
    venv = [USER_PYTHON, "-c", "import ensurepip, venv"]
    if not os.path.exists(venv[0]) or subprocess.run(venv, check=False).returncode != 0:
        pytest.skip("python3 -m venv does not work (apt-get install python3-venv)")
    from openclaw_failover.sandbox.core import Sandbox

    sb = Sandbox().start()  # under /tmp, 0711: the new user reaches the paths it is given
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture(scope="module")
def wheels() -> Iterator[Path]:
    """``DIR/dist``: the wheel built from this tree; ``DIR/wheelhouse``: it and its deps."""
    why = readme_steps.unavailable()
    if why:
        pytest.skip(why)
    top = Path(tempfile.mkdtemp(prefix="ocf-docs-"))
    top.chmod(0o755)  # the new user reads it
    try:
        py = sys.executable
        _run(py, "-m", "build", "--wheel", "--outdir", str(top / "dist"), str(ROOT))
        (wheel,) = (top / "dist").glob("openclaw_failover-*.whl")
        # the dependencies as wheels for the new user's python3 (maybe not this one's)
        version = _run(USER_PYTHON, "-c", "import sys; print('%d%d' % sys.version_info[:2])")
        house = ["download", "-q", "--only-binary=:all:", "--python-version", version.strip()]
        _run(py, "-m", "pip", *house, "-d", str(top / "wheelhouse"), str(wheel))
        _run("chmod", "-R", "a+rX", str(top))
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run(*argv: str) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{shlex.join(argv)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture
def user() -> Iterator[FreshUser]:
    why = readme_steps.unavailable()
    if why:
        pytest.skip(why)
    account = FreshUser()
    try:
        yield account
    finally:
        account.remove()


# --------------------------------------------------------------------------- the steps


def run_block(user: FreshUser, name: str, table: dict[str, str], **kw: Any) -> str:
    """Run the README's block ``name`` (with ``table``'s substitutions) as ``user``."""
    script = substitute(blocks()[name], table)
    t0 = time.monotonic()
    r = user.run(script, **kw)
    out = f"--- {name} ({time.monotonic() - t0:.1f}s, exit {r.returncode}):\n{r.stdout}{r.stderr}"
    print(out)
    assert r.returncode == 0, out
    return r.stdout


def keys_and_install(world: Any, wheels: Path, user: FreshUser) -> None:
    """The first two blocks: a key (copied to the sandbox's primary) and ocf from the wheel."""
    copy_id = f"ssh-copy-id -i ~/.ssh/id_ed25519.pub {MAC_USER}@{MAC}"
    run_block(user, "setup-keys", {copy_id: ": ssh-copy-id: done by the test"})
    public = (user.home / ".ssh" / "id_ed25519.pub").read_text()
    with world.ssh.authorized_keys.open("a") as fh:  # what ssh-copy-id does on the primary
        fh.write(public)
    pip = {
        "PIP_FIND_LINKS": str(wheels / "wheelhouse"),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    install = blocks()["setup-install"]
    run_block(user, "setup-install", {install: f"cd {wheels / 'dist'}\n{install}"}, env=pip)
    assert os.path.islink(user.home / ".local" / "bin" / "ocf")


def sandbox_values(world: Any, user: FreshUser) -> dict[str, Any]:
    """The sandbox's values for what the README tells the user to edit (dotted keys)."""
    python = str(user.home / ".local" / "share" / "ocf" / "bin" / "python")  # from the wheel
    local = [python, "-m", "openclaw_failover.sandbox", "unit"]
    files = world._endpoints().files
    return {
        "primary.host": "127.0.0.1",
        "primary.ssh.user": world.ssh.user,
        "primary.ssh.port": world.ssh.port,
        "primary.gateway.health_url": world.primary.url,
        "primary.gateway.stop_command": ocfconfig.unit_command(
            "stop", world.primary.gateway.dir, remote=True
        ),
        "primary.gateway.start_command": ocfconfig.unit_command(
            "start", world.primary.gateway.dir, remote=True
        ),
        "standby.gateway.health_url": world.standby.url,
        "standby.gateway.start_command": [*local, "start", str(world.standby.gateway.dir)],
        "standby.gateway.stop_command": [*local, "stop", str(world.standby.gateway.dir)],
        "standby.gateway.fallback_start_command": None,  # no openclaw here: deleted
        "telegram.chat_id": ocfconfig.CHAT_ID,
        "telegram.base_url": f"http://127.0.0.1:{world.telegram.spec().extra['port']}/bot",
        "database.primary_dsn": world.primary.cluster.dsn() + " password=${MEMU_PASSWORD}",
        "database.standby_dsn": world.standby.cluster.dsn(),
        "files": ([{"path": f"{files[0]}/", "remote_path": f"{files[1]}/"}] if files else None),
    }


def edit_config(path: Path, values: dict[str, Any]) -> None:
    """ "Edit it": set (or, for None, delete) each dotted key; the file keeps its owner."""
    doc = yaml.safe_load(path.read_text())
    for dotted, value in values.items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        assert last in node, f"config.example.yaml has no {dotted}: the README's edit list"
        if value is None:
            del node[last]
        else:
            node[last] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def host_fingerprint(world: Any) -> str:
    """What ``ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`` prints on the primary."""
    pub = world.ssh.dir / "host_key.pub"
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True)
    return out.stdout.split()[1]


def assert_doctor_passed(stdout: str) -> None:
    assert not [line for line in stdout.splitlines() if line.startswith("FAIL")], stdout
    assert "ok    ssh:" in stdout and "ok    database:" in stdout, stdout
    assert "warn  schedule: not installed yet (step 6)" in stdout, stdout


# --------------------------------------------------------------------------- the tests


def test_readme_setup_by_hand_on_a_fresh_account(world: Any, wheels: Path, user: FreshUser) -> None:
    keys_and_install(world, wheels, user)
    run_block(user, "setup-config", {})
    config = user.home / ".config" / "openclaw-failover" / "config.yaml"
    edit_config(config, sandbox_values(world, user))
    out = run_block(
        user,
        "setup-check",
        {MAC: "127.0.0.1", "-p 22 ": f"-p {world.ssh.port} ", "123:abc": DEFAULT_TOKEN},
    )
    assert f"[127.0.0.1]:{world.ssh.port}" in (user.home / ".ssh" / "known_hosts").read_text()
    assert "dry run" in out and "primary healthy" in out, out
    assert_doctor_passed(out)
    env_file = config.parent / "env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_readme_ocf_init_yes_on_a_fresh_account(world: Any, wheels: Path, user: FreshUser) -> None:
    keys_and_install(world, wheels, user)
    gw = ocfconfig.unit_command
    python = str(user.home / ".local" / "share" / "ocf" / "bin" / "python")
    local = [python, "-m", "openclaw_failover.sandbox", "unit"]
    files = world._endpoints().files
    sandbox_only = [
        f"--port={world.ssh.port}",
        f"--primary-health-url={world.primary.url}",
        f"--primary-stop-command={shlex.join(gw('stop', world.primary.gateway.dir, remote=True))}",
        f"--primary-start-command={shlex.join(gw('start', world.primary.gateway.dir, remote=True))}",
        f"--standby-health-url={world.standby.url}",
        f"--standby-start-command={shlex.join([*local, 'start', str(world.standby.gateway.dir)])}",
        f"--standby-stop-command={shlex.join([*local, 'stop', str(world.standby.gateway.dir)])}",
        f"--telegram-base-url=http://127.0.0.1:{world.telegram.spec().extra['port']}/bot",
        *([f"--file={files[0]}/={files[1]}/"] if files else ["--no-files"]),
    ]
    standby_dsn = shlex.quote(world.standby.cluster.dsn())
    table = {
        f"--host {MAC}": "--host 127.0.0.1",
        f"--user {MAC_USER}": f"--user {world.ssh.user}",
        "SHA256:...": host_fingerprint(world),
        "123:abc": DEFAULT_TOKEN,
        "--chat-id 123456": f"--chat-id {ocfconfig.CHAT_ID}",
        "--standby-dsn 'dbname=memu'": f"--standby-dsn {standby_dsn} "
        + " ".join(shlex.quote(a) for a in sandbox_only),
    }
    out = run_block(user, "setup-init", table)
    assert "wrote" in out and "(mode 0600)" in out, out
    assert_doctor_passed(out)  # init's own doctor, then the block's last line: `ocf doctor`
    doc = yaml.safe_load((user.home / ".config" / "openclaw-failover" / "config.yaml").read_text())
    assert doc["database"]["subscription"] == "memu_sub"
