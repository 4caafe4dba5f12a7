"""This host: running commands, the local gateway, files on disk.

``runner`` runs every external command (timeout, no shell, masked logging);
``gateway`` starts, stops and checks the standby's gateway (a detached process
when no service manager is used), ``procid`` tells our process from a reused
pid, ``readiness`` waits for the gateway to serve and ``chanhealth`` reads
which of its channels fail, ``httpcheck`` reads an HTTP
status line; ``safefs`` opens, writes and fsyncs files without following
symlinks; ``logs`` sets up ocf.log; ``faults`` holds the named fault points the
tests kill a run at.  May import ``config`` and ``core``.
"""
