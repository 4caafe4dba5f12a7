"""The `ocf` command line: click commands only, a thin layer over the library.

`app` holds the group, the shared options and the tick-facing commands (check, status,
syncback, watch, pause/resume, release); `ops`, `init`, `quarantine` and `cluster` hold
the operator's commands and register themselves on the group when imported here. The
commands parse arguments, call into `engine`, `ops` and `syncback`, and print; they make
no decisions of their own. Imports of heavy modules happen inside the commands, so the
healthy `ocf check` pays only for what it uses.
"""

from openclaw_failover.cli import cluster, init, ops, quarantine
from openclaw_failover.cli.app import cli, main

__all__ = ["cli", "cluster", "init", "main", "ops", "quarantine"]
