"""`python -m openclaw_failover` runs the `ocf` command line."""

from openclaw_failover.cli import main

if __name__ == "__main__":
    main()
