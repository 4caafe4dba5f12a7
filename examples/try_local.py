"""`make try`: write a throwaway config for a primary at 127.0.0.1 and run a dry-run check.

Nothing listens on the chosen SSH port, so the dry run shows what ocf would do
when the primary is down: take over (start the local gateway) and notify.
Nothing is started, written or sent.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import paramiko


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ocf-try-") as tmp:
        root = Path(tmp)
        port = free_port()
        paramiko.RSAKey.generate(2048).write_private_key_file(str(root / "id_rsa"))
        host_key = paramiko.RSAKey.generate(2048)
        (root / "known_hosts").write_text(f"[127.0.0.1]:{port} ssh-rsa {host_key.get_base64()}\n")
        config = root / "config.yaml"
        config.write_text(
            f"""primary:
  name: Mac Studio
  host: 127.0.0.1
  ssh: {{user: nobody, port: {port}, key_file: {root}/id_rsa,
        known_hosts: {root}/known_hosts, connect_timeout: 2}}
standby:
  name: RPi
  gateway: {{health_url: "http://127.0.0.1:{free_port()}/"}}
check: {{retries: 1, retry_delay: 1}}
state_dir: {root}/state
"""
        )
        print(f"# config: {config} (primary's SSH port {port}: nothing listens there)")
        print(f"$ ocf --config {config} check --dry-run", flush=True)
        cmd = [sys.executable, "-m", "openclaw_failover", "--config", str(config)]
        rc = subprocess.call([*cmd, "check", "--dry-run"])
        print(f"# exit status {rc}; state_dir untouched: {not (root / 'state').exists()}")
        return rc


if __name__ == "__main__":
    sys.exit(main())
