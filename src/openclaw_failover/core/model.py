"""Plain data passed between the pipeline's stages (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ProbeStatus(enum.StrEnum):
    """How one probe of the primary ended."""

    HEALTHY = "healthy"  # the gateway answered with an HTTP status below 500
    GATEWAY_DOWN = "gateway_down"  # SSH works; the gateway refused, closed, or answered 5xx
    GATEWAY_SLOW = "gateway_slow"  # SSH works; the gateway's channel or answer timed out
    UNREACHABLE = "unreachable"  # never answered: no route, connect timeout, no SSH banner
    SLOW = "slow"  # answered (banner came / host key verified), then a later step timed out
    REFUSED = "refused"  # the SSH port is closed
    AUTH_FAILED = "auth_failed"  # key rejected, host key unknown or changed
    PROBE_ERROR = "probe_error"  # cannot probe (forwarding refused and no curl): never fails over

    @property
    def is_failure(self) -> bool:
        """Never answered or refused: counts towards ``check.fall``."""
        return self in (ProbeStatus.GATEWAY_DOWN, ProbeStatus.UNREACHABLE, ProbeStatus.REFUSED)

    @property
    def is_slow(self) -> bool:
        """Answered, then too slow: counts only towards the longer ``check.slow_fall``."""
        return self in (ProbeStatus.SLOW, ProbeStatus.GATEWAY_SLOW)

    @property
    def ssh_ok(self) -> bool:
        """SSH reached and authenticated to the primary."""
        return self in (
            ProbeStatus.HEALTHY,
            ProbeStatus.GATEWAY_DOWN,
            ProbeStatus.GATEWAY_SLOW,
            ProbeStatus.PROBE_ERROR,
        )


@dataclass(frozen=True)
class ProbeResult:
    """One probe of the primary's gateway."""

    status: ProbeStatus
    latency: float  # seconds the probe took
    detail: str = ""  # one line, secrets masked: "HTTP 200 via direct-tcpip", "connection refused"
    method: str = ""  # "direct-tcpip" | "curl" | ""
    http_status: int | None = None


@dataclass(frozen=True)
class WitnessReport:
    """Which of ``check.witnesses`` this standby could reach (an observation, no verdict)."""

    answered: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()  # (witness, why), masked

    @property
    def total(self) -> int:
        return len(self.answered) + len(self.failed)

    def to_json(self) -> dict[str, object]:
        return {
            "answered": list(self.answered),
            "failed": [{"witness": w, "why": why} for w, why in self.failed],
        }


@dataclass(frozen=True)
class Observation:
    """What one tick saw: every probe attempt, whether the local gateway answers, and
    (only when the primary was not healthy) which witnesses answered."""

    attempts: tuple[ProbeResult, ...]
    local_up: bool | None = None  # None = not looked at this tick
    witnesses: WitnessReport | None = None  # None = not looked at (or none configured)

    @property
    def final(self) -> ProbeResult:
        """The tick's verdict: a healthy attempt wins, then an auth/probe error, else the last."""
        for wanted in (ProbeStatus.HEALTHY, ProbeStatus.AUTH_FAILED, ProbeStatus.PROBE_ERROR):
            for attempt in self.attempts:
                if attempt.status is wanted:
                    return attempt
        return self.attempts[-1]


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one external command (local or over SSH)."""

    argv: tuple[str, ...]
    returncode: int | None  # None when it could not start or timed out
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    timed_out: bool = False
    error: str = ""  # why it could not run ("not found: systemctl"), masked
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 or self.dry_run

    def summary(self) -> str:
        """One line for logs and notices."""
        name = self.argv[0] if self.argv else "?"
        if self.dry_run:
            return f"{name}: not run (dry run)"
        if self.error:
            return f"{name}: {self.error}"
        if self.timed_out:
            return f"{name}: timed out after {self.duration:.0f}s"
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()
        last = f": {tail[-1][:200]}" if tail and self.returncode else ""
        return f"{name}: exit {self.returncode}{last}"


@dataclass
class Notice:
    """A notification waiting in the state's outbox until Telegram accepts it."""

    id: str  # unique, stable across retries (so a notice is never sent twice)
    kind: str  # took_over | gave_back | failover_failed | ... (config.DEFAULT_MESSAGES keys)
    text: str  # rendered once, at creation: keeps its original time
    created_at: float  # epoch seconds
    attempts: int = 0
    last_error: str = ""  # masked
    next_try_at: float = 0.0  # epoch seconds; set from a 429's retry_after
