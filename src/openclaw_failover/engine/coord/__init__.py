"""Optional leadership on etcd (``coordination:`` in the config): the actor side.

This subpackage owns talking to etcd and acting on the leader key:

- ``etcd``: the client of etcd's v3 JSON gateway (``requests``; typed errors);
- ``leader``: the leader key and its lease (create if absent, refresh, holder-only
  release) and the client built from the config;
- ``step``: one coordination step per check on a standby (gate the decision, release
  after a give-back, heartbeats);
- ``primary``: one check on the primary itself (``mode: primary``);
- ``guard``: the leader's watchdog process (stops our gateway when our lease ends);
- ``cluster``: what ``ocf cluster`` shows.

The choices are pure and live elsewhere: ``core.leadership`` (what a host does about
the key), and the section's schema in ``config.coordination``; ``ocf doctor``'s group
is ``ops.doctor.coordination``.  May import what ``engine`` may.  Nothing imports this
subpackage at module level: the check, ``ocf cluster`` and ``ocf doctor`` import it
lazily, only when ``coordination:`` is configured, so a two-host tick pays nothing.
"""
