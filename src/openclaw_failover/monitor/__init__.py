"""Monitoring hooks: what ocf tells other systems after each check.

``metrics`` writes the Prometheus textfile, ``ping`` calls a healthchecks-style
URL, ``replstatus`` reads both databases' replication health (for the metrics,
`ocf status` and `ocf doctor`).  A hook never fails a check: each catches its own
errors and reports them as a line.  May import ``config``, ``core`` and ``local``
only.
"""
