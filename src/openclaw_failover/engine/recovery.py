"""The one state recovery: a lost or corrupt state file rebuilt from reality.

Every command that needs a state (check, takeover, release, pause, resume,
syncback) calls :func:`recover` when the state file cannot be read.  It
gathers the same facts each time:

- is the local gateway answering (this standby serves);
- ocf's fence marker (it stopped the primary's gateway, which will not come
  back by itself);
- the takeover's sync-back baseline (what the standby wrote is not synced back);
- the standby's subscription disabled (it may hold writes of its own);

and lets the pure :func:`openclaw_failover.core.decide.reconcile` choose the role.
The unreadable file is kept aside and a ``reconciled`` event says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from openclaw_failover.config.loader import Config
from openclaw_failover.core.decide import reconcile
from openclaw_failover.core.events import Reconciled
from openclaw_failover.core.state import State
from openclaw_failover.engine.store import FENCE_MARKER, StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Facts:
    local_up: bool
    fenced: bool
    split: bool
    subscription_disabled: bool


def subscription_disabled(cfg: Config) -> bool:
    """True only when the standby's subscription is known to be disabled."""
    db = cfg.database
    if db is None:
        return False
    try:
        from openclaw_failover.syncback.db import pgmeta
        from openclaw_failover.syncback.db import realign as rc

        with pgmeta.connect(db.standby_dsn, min(db.connect_timeout, 5), autocommit=True) as s:
            return not rc.subscription(s, db.subscription).enabled
    except Exception as exc:  # unknown: the other facts decide
        log.debug("cannot read the subscription's state: %s", exc)
        return False


def gather(cfg: Config, local_up: bool) -> Facts:
    from openclaw_failover.syncback.splitstate import BASELINE_FILE

    return Facts(
        local_up=local_up,
        fenced=(cfg.state_dir / FENCE_MARKER).exists(),
        split=(cfg.state_dir / BASELINE_FILE).exists(),
        subscription_disabled=subscription_disabled(cfg),
    )


def recover(
    cfg: Config,
    store: StateStore,
    warning: str | None,
    facts: Facts,
    now: float,
    *,
    dry_run: bool = False,
) -> State:
    """A fresh state from ``facts``; the bad file kept aside (not in a dry run)."""
    state, how = reconcile(
        facts.local_up,
        now,
        fenced=facts.fenced,
        split=facts.split,
        subscription_disabled=facts.subscription_disabled,
    )
    log.warning("%s; %s", warning, how)
    if not dry_run:
        aside = store.set_aside()
        store.append_event(Reconciled(warning or "", how, str(aside or "")))
    return state
