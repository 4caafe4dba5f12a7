"""Named fault points: a test kills a sync-back at an exact step.

``OCF_FAULT_POINT=<name>`` in the environment makes the process SIGKILL itself
when it reaches :func:`point` with that name (as PostgreSQL's injection points
do).  Unset, a point costs one dictionary lookup.  The names are listed in
:data:`POINTS`; the tests kill a give-back at each one and run it again.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "merge:before-commit",
    "merge:after-commit",
    "reconcile:after-slot",
    "reconcile:before-commit",
    "reconcile:after-commit",
    "repoint:before-enable",
    "repoint:after-enable",
    "done:before-clear",
)


def point(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when the environment names this point."""
    if os.environ.get("OCF_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
