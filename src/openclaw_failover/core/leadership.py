"""What a host does about the leader key this check: a pure function, no I/O.

``choose(facts)`` returns a :class:`Verdict`: one :class:`Do` and one sentence.  The
glue (``engine.coord.step``) gathers the facts (one linearizable read of the leader key, the
primary's probe, the local gateway), runs the verdict and persists what it must.

Rules, for a host in ``standby`` mode (``ocf check`` on a standby):

- etcd unreachable or without quorum: ``hold`` (no role change: never take over; keep
  serving while our lease lasts, after that the leader guard has stopped our gateway
  and it is not restarted) or, with ``on_coordinator_loss: two_node``, the plain
  two-host logic;
- serving (failed over): refresh the key while we hold it; take it again when it
  expired; when another member holds it, give back (stop serving); when the primary
  fenced itself and its fresh heartbeat says it waits (and failback is automatic),
  give back: it takes the key and starts only after our release;
- not serving: the plain logic's takeover happens only when the key is free (absent or
  expired) AND the primary's probe failed; a standby whose priority is lower than that
  of another live standby waits ``delay`` seconds after it first saw that first;
- after a give-back: release the key (the last step, so the primary takes it then).

In ``primary`` mode (``ocf check`` on the primary itself):

- its gateway healthy: hold the key (refresh, or take it when free); when a standby
  holds it, wait for that standby's give-back;
- its gateway down: release the key, so a standby need not wait for the TTL; after it
  fenced itself and etcd answers again: wait while a standby holds the key (its
  heartbeat says ``fenced``, and that standby gives back), take the key when it is
  free, and only then start its gateway: never two serving;
- cannot refresh: keep serving while the next check still comes before the lease runs
  out (``last_refresh + ttl``); otherwise fence itself (stop its gateway), unless
  ``two_node``, where it keeps serving and the standbys' probes decide.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Do(enum.StrEnum):
    PROCEED = "proceed"  # the plain logic's decision stands (nothing about the key to do)
    ACQUIRE = "acquire"  # take the free key; a standby then takes over
    REFRESH = "refresh"  # keep our lease alive
    RELEASE = "release"  # delete our key (after a give-back, or our gateway is down)
    VETO = "veto"  # the plain logic wanted to take over: not allowed now
    STEP_DOWN = "step_down"  # serving without the key: stop serving (give back)
    FENCE_SELF = "fence_self"  # primary: stop our own gateway, the lease ran out
    START_SELF = "start_self"  # primary: took the key again after fencing ourselves: start
    GIVE_BACK = "give_back"  # standby: the primary fenced itself and waits for the key
    HOLD = "hold"  # etcd cannot be asked: no role change
    HOLD_DOWN = "hold_down"  # ... and our lease ran out: our gateway is not restarted
    TWO_NODE = "two_node"  # etcd cannot be asked: the plain two-host logic decides


@dataclass(frozen=True)
class Facts:
    mode: str  # "primary" | "standby"
    name: str
    now: float
    ttl: float
    interval: float  # seconds until the next check (ocf watch: its --interval)
    on_loss: str = "hold"  # "hold" | "two_node"
    etcd_error: str | None = None  # None: etcd answered a linearizable read
    holder: str | None = None  # who holds the leader key (None: nobody)
    ttl_left: float | None = None
    serving: bool = False  # standby: failed over (or taking over); primary: gateway healthy
    wants_takeover: bool = False  # standby: the plain logic decided to take over
    gave_back: bool = False  # standby: the plain logic's give-back finished this check
    primary_failed: bool = False  # standby: the primary's probe failed (not slow, not auth)
    last_refresh: float | None = None  # when we last refreshed (or took) the key
    self_fenced: bool = False  # primary: we stopped our own gateway (FENCE_SELF)
    primary_waiting: bool = False  # standby: the primary's heartbeat says fenced, and is fresh
    auto_failback: bool = True  # standby: check.failback auto and no manual takeover
    free_since: float | None = None  # when this standby first saw the key free, primary down
    priority: int = 0
    higher_priority_alive: str | None = None  # a live standby with a higher priority
    delay: float = 0.0  # how long a lower-priority standby waits


@dataclass(frozen=True)
class Verdict:
    do: Do
    reason: str
    free_since: float | None = None  # to remember until the next check


def choose(f: Facts) -> Verdict:
    if f.mode == "primary":
        return _primary(f)
    return _standby(f)


def _standby(f: Facts) -> Verdict:
    if f.etcd_error is not None:
        if f.on_loss == "two_node":
            return Verdict(Do.TWO_NODE, f"etcd cannot be asked ({f.etcd_error}): two-host logic")
        expires = (f.last_refresh or 0.0) + f.ttl
        if f.serving and f.now + f.interval >= expires:
            return Verdict(
                Do.HOLD_DOWN,
                f"no role change: etcd cannot be asked ({f.etcd_error}); our lease ran out: "
                "the gateway stays stopped until this standby holds the key again",
            )
        what = "keeps serving" if f.serving else "does not take over"
        return Verdict(Do.HOLD, f"no role change: etcd cannot be asked ({f.etcd_error}); {what}")
    if f.gave_back:
        if f.holder == f.name:
            return Verdict(Do.RELEASE, "gave back: leader key released")
        return Verdict(Do.PROCEED, "gave back; the leader key was not ours any more")
    if f.serving:
        if f.holder == f.name and f.primary_waiting and f.auto_failback:
            return Verdict(Do.GIVE_BACK, "the primary fenced itself and waits for the key")
        if f.holder == f.name:
            return Verdict(Do.REFRESH, "serving and holding the leader key")
        if f.holder is None:
            return Verdict(Do.ACQUIRE, "serving, the leader key had expired: taking it again")
        return Verdict(Do.STEP_DOWN, f"serving, but {f.holder} holds the leader key: stepping down")
    if not f.wants_takeover:
        return Verdict(Do.PROCEED, "")
    return _may_take_over(f)


def _may_take_over(f: Facts) -> Verdict:
    if f.holder is not None:
        left = ""
        if f.ttl_left is not None:
            left = f" ({f.ttl_left:g}s left on its lease)" if f.ttl_left > 0 else " (expiring)"
        return Verdict(Do.VETO, f"not taking over: {f.holder} holds the leader key{left}")
    if not f.primary_failed:
        return Verdict(Do.VETO, "not taking over: the primary's probe did not fail")
    if f.primary_waiting:
        return Verdict(Do.VETO, "not taking over: the primary fenced itself and takes the key back")
    since = f.free_since if f.free_since is not None else f.now
    if f.higher_priority_alive is not None and f.now - since < f.delay:
        wait = f.delay - (f.now - since)
        return Verdict(
            Do.VETO,
            f"not taking over yet: {f.higher_priority_alive} has a higher priority "
            f"(waiting {wait:.0f}s more)",
            free_since=since,
        )
    return Verdict(Do.ACQUIRE, "the leader key is free and the primary is down", free_since=since)


def _primary(f: Facts) -> Verdict:
    if f.etcd_error is not None:
        if f.on_loss == "two_node" or not f.serving:
            why = "two-host logic" if f.on_loss == "two_node" else "gateway not serving"
            return Verdict(Do.HOLD, f"etcd cannot be asked ({f.etcd_error}); {why}")
        expires = (f.last_refresh or 0.0) + f.ttl
        if f.now + f.interval < expires:
            left = expires - f.now
            return Verdict(
                Do.HOLD, f"cannot refresh the leader key ({f.etcd_error}); {left:.0f}s left"
            )
        return Verdict(
            Do.FENCE_SELF,
            f"fenced itself: could not refresh the leader key before its lease ran out "
            f"({f.etcd_error})",
        )
    if not f.serving:
        if f.self_fenced and f.holder == f.name:
            return Verdict(Do.START_SELF, "holding the leader key again: starting its gateway")
        if f.self_fenced and f.holder is None:
            return Verdict(Do.ACQUIRE, "fenced, the leader key is free: taking it, then starting")
        if f.self_fenced:
            return Verdict(Do.PROCEED, f"fenced; waiting for {f.holder}'s give-back")
        if f.holder == f.name:
            return Verdict(Do.RELEASE, "gateway down: leader key released for a standby")
        return Verdict(Do.PROCEED, "gateway down; not holding the leader key")
    if f.holder == f.name:
        return Verdict(Do.REFRESH, "serving and holding the leader key")
    if f.holder is None:
        return Verdict(Do.ACQUIRE, "serving; the leader key is free: taking it")
    return Verdict(Do.PROCEED, f"{f.holder} holds the leader key: waiting for its give-back")
