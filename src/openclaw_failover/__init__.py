"""openclaw-failover (ocf): keep an OpenClaw gateway alive on a standby host.

The packages, lowest layer first; each imports only from layers below it
(tests/unit/test_architecture.py checks this and that no import cycle exists):

- ``config``: the schema, the loader, the example config, the one masker;
- ``core``: the model, the state and the pure ``decide``;
- ``local``: this host (commands, the local gateway, safe file access);
- ``primary`` (SSH, probes, witnesses), ``notify`` (Telegram), ``monitor`` (metrics, ping,
  replication health);
- ``syncback``: rows and files back to the primary, quarantine;
- ``engine``: one check (tick), the actions, recovery, the state store, `ocf watch`;
- ``ops`` (status, history, doctor, drill, install, init) and ``sandbox`` (the demo's world);
- ``cli``: the click commands, thin over all of the above.
"""

__version__ = "0.1.0"
