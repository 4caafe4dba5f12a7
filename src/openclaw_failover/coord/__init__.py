"""Optional leadership on etcd (``coordination:`` in the config).

This subpackage owns everything about the etcd leader key: the client of etcd's v3
JSON gateway (``etcd``), the leader key and its lease (``leader``), the pure choice of
what a host does given the lease, its role and the primary's probe (``policy``), and
the glue that runs one coordination step per check (``step``, ``primary``) and the
``ocf cluster`` view (``cluster``).

Imports: the standard library and ``requests`` in ``etcd``, ``leader`` and ``policy``
(``policy`` imports nothing but the standard library: it is pure); the glue modules
may import ``openclaw_failover.config``, ``.model``, ``.state`` and ``.runner``.  Nothing
outside this subpackage imports it at module level: the check imports it lazily, only
when ``coordination:`` is configured, so a two-host tick pays nothing for it.
"""
