"""The leader key: who serves the gateway.

``<prefix>/leader`` holds the holder's name and is tied to a lease of ``ttl`` seconds.
It is created in one transaction only if absent (``create_revision == 0``), refreshed
by keeping its lease alive, and deleted only by its holder (a transaction comparing
the value and the lease).  Between checks nothing is kept locally: the key's own lease
id is the holder's lease, so a new process (the next cron tick) can refresh it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openclaw_failover.config.loader import Config
from openclaw_failover.config.secrets import Masker
from openclaw_failover.engine.coord.etcd import EtcdClient, KeyValue, b64, parse_kv


@dataclass(frozen=True)
class LeaderView:
    """What etcd says about the leader key (read linearizably)."""

    holder: str | None  # None: nobody holds it (absent or expired)
    lease: int = 0
    ttl_left: int | None = None  # seconds on the holder's lease (None: not asked / no holder)
    revision: int = 0  # the key's mod_revision


@dataclass(frozen=True)
class Acquired:
    won: bool
    view: LeaderView  # after the attempt: us when we won, the holder otherwise


class Leadership:
    """The leader key of one cluster, as seen by member ``name``."""

    def __init__(self, client: EtcdClient, prefix: str, name: str, ttl: int) -> None:
        self.client = client
        self.key = prefix.rstrip("/") + "/leader"
        self.name = name
        self.ttl = ttl

    def read(self, *, with_ttl: bool = True) -> LeaderView:
        kv = self.client.get(self.key)
        return self._view(kv, with_ttl=with_ttl)

    def _view(self, kv: KeyValue | None, *, with_ttl: bool) -> LeaderView:
        if kv is None:
            return LeaderView(None)
        ttl = self.client.lease_ttl(kv.lease) if with_ttl and kv.lease else None
        return LeaderView(kv.value, kv.lease, ttl, kv.mod_revision)

    def acquire(self) -> Acquired:
        """Create the key for us if nobody holds it: one transaction, a fresh lease."""
        lease = self.client.lease_grant(self.ttl)
        compare = [{"key": b64(self.key), "target": "CREATE", "result": "EQUAL",
                    "create_revision": "0"}]  # fmt: skip
        put = {"request_put": {"key": b64(self.key), "value": b64(self.name), "lease": str(lease)}}
        get = {"request_range": {"key": b64(self.key)}}
        won, responses = self.client.txn(compare, [put], [get])
        if won:
            return Acquired(True, LeaderView(self.name, lease, self.ttl))
        self.client.lease_revoke(lease)  # ours is not needed: the key has a holder
        return Acquired(False, self._view(_first_kv(responses), with_ttl=True))

    def refresh(self, view: LeaderView | None = None) -> LeaderView:
        """Keep our lease alive. Returns the view after it; ``holder`` is not us when we
        did not hold the key (or its lease had already expired)."""
        view = view if view is not None else self.read(with_ttl=False)
        if view.holder != self.name or not view.lease:
            return view
        ttl = self.client.lease_keepalive(view.lease)
        if ttl <= 0:  # expired in between: the key is gone with it
            return LeaderView(None)
        return LeaderView(self.name, view.lease, ttl, view.revision)

    def release(self) -> bool:
        """Delete the key, only if we hold it (value and lease compared in one
        transaction), then revoke our lease. False when we did not hold it."""
        kv = self.client.get(self.key)
        if kv is None or kv.value != self.name:
            return False
        compare = [
            {"key": b64(self.key), "target": "VALUE", "result": "EQUAL", "value": b64(self.name)},
            {"key": b64(self.key), "target": "LEASE", "result": "EQUAL", "lease": str(kv.lease)},
        ]
        delete = {"request_delete_range": {"key": b64(self.key)}}
        won, _ = self.client.txn(compare, [delete])
        if won and kv.lease:
            self.client.lease_revoke(kv.lease)
        return won


def _first_kv(responses: list[dict[str, Any]]) -> KeyValue | None:
    for response in responses:
        kvs = (response.get("response_range") or {}).get("kvs") or []
        if kvs:
            return parse_kv(kvs[0])
    return None


def client_for(cfg: Config, mask: Masker) -> EtcdClient:
    """The etcd client of ``coordination:`` (endpoints, TLS, user, timeout)."""
    cc = cfg.coordination
    assert cc is not None
    return EtcdClient(
        cc.endpoints,
        timeout=cc.timeout,
        ca_file=str(cc.ca_file) if cc.ca_file else None,
        cert_file=str(cc.cert_file) if cc.cert_file else None,
        key_file=str(cc.key_file) if cc.key_file else None,
        user=cc.user,
        password=cc.password,
        mask=mask,
    )
