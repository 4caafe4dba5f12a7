"""``python -m openclaw_failover.sandbox``: the sandbox's own commands.

unit start|stop|status DIR...   start or stop a unit (the generated config's
                                start/stop commands; like systemctl --user)
stop DIR                        stop every process of a kept sandbox, remove DIR
demo [--keep] [--transport T]   play the demo (what `ocf demo` runs)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m openclaw_failover.sandbox")
    sub = ap.add_subparsers(dest="command", required=True)
    unit = sub.add_parser("unit", help="start/stop/status of a unit directory")
    unit.add_argument("verb", choices=("start", "stop", "status"))
    unit.add_argument("dirs", nargs="+", metavar="DIR")
    stop = sub.add_parser("stop", help="stop a kept sandbox and remove its directory")
    stop.add_argument("dir", metavar="DIR")
    demo = sub.add_parser("demo", help="play the failover demo")
    demo.add_argument("--keep", action="store_true", help="leave the sandbox running")
    demo.add_argument("--transport", choices=("auto", "openssh", "paramiko"), default="auto")
    args = ap.parse_args(argv)
    if args.command == "unit":
        from openclaw_failover.sandbox.procs import run_unit_command

        return run_unit_command(args.verb, args.dirs)
    if args.command == "stop":
        from openclaw_failover.sandbox.core import stop_sandbox

        return stop_sandbox(Path(args.dir), print)
    from openclaw_failover.sandbox.demo import run_demo

    return run_demo(keep=args.keep, transport=args.transport)


if __name__ == "__main__":
    sys.exit(main())
