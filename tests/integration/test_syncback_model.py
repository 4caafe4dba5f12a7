"""No path loses a memory (issue 8): randomized failover cycles against a model.

Real PostgreSQL pairs (18 -> 18 with pgvector, 18 -> 15 with float8[]), real
logical replication, give-backs in a subprocess SIGKILLed at every fault point
and run again; after every give-back the end state is checked against
``tests/harness/memu_model.py`` (see ``tests/harness/soak.py`` for the cycle).

CI runs one fixed seed per pair, eight cycles each (every fault point, a manual
repair, a repair with ``discard_standby_only``).  Longer runs:

    OCF_SOAK_SEEDS=1-20 OCF_SOAK_CYCLES=15 .venv/bin/pytest tests/integration/test_syncback_model.py
    .venv/bin/python -m tests.harness.soak --pairs pg18,mixed --seeds 1-20 --cycles 15 -v

(``OCF_SOAK_PAIRS`` picks pairs for the pytest form.)

A failure names the seed, pair, cycle and step, the invariant, table and key,
and the command that replays it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.memu_model import COLUMNS, Snapshot, expected_giveback
from tests.harness.pg import MemuPair
from tests.harness.soak import FAULTS, PAIRS, Soak, parse_seeds

CYCLES = int(os.environ.get("OCF_SOAK_CYCLES", "8"))
# (pair, seed, fault offset): pg18's eight cycles kill at all eight points, mixed's at
# seven (one give-back not killed); the seeds put a manual repair in both pairs.
DEFAULT_RUNS = [("pg18", 1808, 0), ("mixed", 1815, 4)]
# Exploration only (hides known bugs; CI sets neither): see tests/harness/soak.py --help.
SETTLE = os.environ.get("OCF_SOAK_SETTLE") == "1"
AVOID = frozenset(filter(None, os.environ.get("OCF_SOAK_AVOID", "").split(",")))


def _runs() -> list[tuple[str, int, int]]:
    seeds = os.environ.get("OCF_SOAK_SEEDS")
    pairs = os.environ.get("OCF_SOAK_PAIRS", "pg18,mixed").split(",")
    if not seeds:
        return [r for r in DEFAULT_RUNS if r[0] in pairs]
    return [(p, s, s % (len(FAULTS) + 1)) for p in pairs for s in parse_seeds(seeds)]


@pytest.mark.integration
@pytest.mark.parametrize(("kind", "seed", "offset"), _runs(), ids=lambda v: str(v))
def test_failover_cycles_lose_no_memory(
    kind: str,
    seed: int,
    offset: int,
    memu_pair_factory: Callable[..., MemuPair],
    tmp_path: Path,
) -> None:
    pair = memu_pair_factory(*PAIRS[kind])
    soak = Soak(
        pair,
        tmp_path,
        seed,
        cycles=CYCLES,
        label=kind,
        fault_offset=offset,
        settle=SETTLE,
        avoid=AVOID,
    )
    out = soak.run()  # raises SoakError naming seed, cycle, step, invariant, table and key
    assert out.cycles == CYCLES
    scheduled = {
        FAULTS[(offset + c) % (len(FAULTS) + 1)]
        for c in range(CYCLES)
        if (offset + c) % (len(FAULTS) + 1) < len(FAULTS)
    }
    never = sorted(p for p in scheduled if not out.kills[p])
    assert not never, (
        f"seed={seed} pair={kind}: fault points never reached, so never tested: {never}; "
        f"notes: {out.notes}"
    )


def test_every_fault_point_of_the_code_is_scheduled() -> None:
    from openclaw_failover.local import faults

    assert set(FAULTS) == set(faults.POINTS), "update FAULTS in tests/harness/soak.py"


# --------------------------------------------------------------------------- the oracle itself


def _row(table: str, key: str, updated_at: float, **values: object) -> tuple[object, ...]:
    base: dict[str, object] = {c: None for c in COLUMNS[table]}
    base.update(id=key, scope_key="u", updated_at=updated_at, created_at=1.0)
    base.update(values)
    return tuple(base[c] for c in COLUMNS[table])


def _snap(**tables: dict[str, tuple[object, ...]]) -> Snapshot:
    return {t: dict(tables.get(t, {})) for t in COLUMNS}


def test_model_encodes_the_rules_of_issue_8() -> None:
    r = _row
    res = {k: r("resources", k, 1) for k in ("R1", "R2", "R3")}
    items = {
        "I1": r("memory_items", "I1", 1, resource_id="R1", summary="a"),
        "I2": r("memory_items", "I2", 1, resource_id="R2", summary="b"),
        "I3": r("memory_items", "I3", 1, resource_id="R3", summary="c"),
    }
    cat = {"C1": r("memory_categories", "C1", 1, name="work")}
    s0 = _snap(resources=res, memory_items=items, memory_categories=cat)
    p = _snap(
        resources={k: v for k, v in res.items() if k != "R3"},  # primary deleted R3
        memory_items={
            "I1": r("memory_items", "I1", 5, resource_id="R1", summary="p newer"),
            "I2": items["I2"],
        },
        memory_categories={**cat, "C2": r("memory_categories", "C2", 2, name="garden")},
    )
    s = _snap(
        resources={"R1": res["R1"], "R3": res["R3"]},  # standby deleted R2 (and I2)
        memory_items={
            "I1": r("memory_items", "I1", 3, resource_id="R1", summary="s older"),
            "I3": r("memory_items", "I3", 9, resource_id="R3", summary="orphan"),
            "I4": r("memory_items", "I4", 9, resource_id="R1", summary="new"),
        },
        memory_categories={**cat, "C3": r("memory_categories", "C3", 3, name="Garden")},
        category_items={"L1": r("category_items", "L1", 3, item_id="I4", category_id="C3")},
    )
    exp = expected_giveback(s0, p, s)
    assert set(exp.rows["resources"]) == {"R1"}  # R2 deleted on the standby travels
    assert exp.rows["memory_items"]["I1"][4] == "p newer"  # both changed: newer wins
    assert set(exp.rows["memory_items"]) == {"I1", "I4"}
    assert ("memory_items", "I3") in exp.orphans  # its resource is gone from the primary
    assert exp.merged[("memory_categories", "C3")] == "C2"  # same name, other case
    assert exp.rows["category_items"]["L1"][3] == "C2"  # re-pointed
    repair = expected_giveback(None, p, s, baseline=False)
    assert {"R1", "R2", "R3"} <= set(repair.rows["resources"])  # nothing the primary holds goes
    assert "I3" in repair.rows["memory_items"]  # no baseline: standby-only rows are inserted
