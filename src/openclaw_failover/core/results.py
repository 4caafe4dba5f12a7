"""What running each action did: one result type per action, facts only.

The actor (``engine.actions``) fills these in; ``core.settle`` reads them to move the
state on.  A result says what happened, never what to do next.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openclaw_failover.core.events import SyncCounts


@dataclass(frozen=True)
class TakeoverResult:
    """A TakeOver ran: was the primary fenced, did our gateway start?"""

    started: bool  # the local gateway answers
    fenced: bool = False  # the primary's gateway was stopped
    aborted: bool = False  # stopped before anything started (core.choices.fence_verdict)
    channels: str = ""  # "up, but channel X failing: ..." (masked, shortened) or ""
    detail: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.started


class GiveBackEnd(enum.StrEnum):
    """Where a give-back stopped."""

    DONE = "done"  # our gateway stopped, synced back, the primary's restarted if asked
    SYNC_FAILED = "sync_failed"  # our gateway stopped, the sync-back failed
    STOP_FAILED = "stop_failed"  # our gateway still answers
    RESTORED = "restored"  # the primary's gateway did not restart: ours serves again
    NOBODY_SERVES = "nobody_serves"  # the primary's did not restart, and ours neither


@dataclass(frozen=True)
class GiveBackResult:
    end: GiveBackEnd
    unfenced: bool = False  # the primary's gateway was restarted by us
    sync: SyncCounts | None = None  # what the sync-back did (both passes); None: it did not run
    detail: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.end is GiveBackEnd.DONE

    @property
    def sync_summary(self) -> str:
        return self.sync.summary if self.sync else ""


@dataclass(frozen=True)
class FenceResult:
    """A Fence ran (two gateways were serving)."""

    fenced: bool
    detail: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.fenced


@dataclass(frozen=True)
class RestartResult:
    """A RestartLocal ran."""

    started: bool
    detail: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.started


Result = TakeoverResult | GiveBackResult | FenceResult | RestartResult
