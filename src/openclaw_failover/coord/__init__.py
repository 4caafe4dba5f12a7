"""Optional leadership on etcd (``coordination:`` in the config).

This subpackage owns everything about the etcd leader key:

- ``etcd``: the client of etcd's v3 JSON gateway (``requests``; typed errors);
- ``leader``: the leader key and its lease (create if absent, refresh, holder-only release);
- ``policy``: the pure choice of what a host does about the key (no I/O);
- ``settings``: the config section's schema, dataclass and cross-checks;
- ``step``: one coordination step per check on a standby (and the shared glue);
- ``primary``: one check on the primary itself (``mode: primary``);
- ``guard``: the leader's watchdog process (stops our gateway when our lease ends);
- ``cluster`` and ``doctor``: ``ocf cluster`` and ``ocf doctor``'s coordination group.

Imports: ``etcd`` the standard library and ``requests``; ``leader`` only ``etcd``;
``policy`` only the standard library; ``settings`` only ``openclaw_failover.schema``
(``config`` imports it: validating a config costs nothing more); the others may import
``openclaw_failover.config``, ``.decide``, ``.model``, ``.state``, ``.runner``,
``.safefs``, ``.procid`` and ``.gateway``.  Nothing outside this subpackage imports
the rest at module level: the check, ``ocf cluster`` and ``ocf doctor`` import it
lazily, only when ``coordination:`` is configured, so a two-host tick pays nothing.
"""
