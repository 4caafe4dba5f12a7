"""pytest fixtures around :mod:`tests.harness.pg` (real PostgreSQL, real logical replication).

Register once, in ``tests/conftest.py``::

    pytest_plugins = ["tests.harness.fixtures", "tests.harness.pg_fixtures"]

Fixtures (all function-scoped; every cluster is stopped and removed after the test):

``pg18_pair``
    A :class:`MemuPair`: primary 18 -> standby 18, pgvector ``vector`` embeddings.
``pg15_pair``
    Primary 15 -> standby 15 (Debian's PostgreSQL 15, ``float8[]`` embeddings).
    Skips with "Debian PostgreSQL 15 not installed (apt-get install
    postgresql-15)" when ``/usr/lib/postgresql/15/bin/postgres`` is missing.
``mixed_pair``
    Primary 18 -> standby 15, ``float8[]`` embeddings on both (skips like ``pg15_pair``).
``memu_pair_factory``
    Factory: ``memu_pair_factory(primary_version="18", standby_version="18",
    vector=None, **kwargs)`` -> a started, subscribed, caught-up
    :class:`MemuPair`; keyword arguments go to :func:`make_memu_pair`
    (``copy_data``, ``subscribe``, ``settings``).  Skips when a version is
    not installed.  Call it as often as needed.
``memu_pair``
    One pair chosen by indirect parametrization, e.g.
    ``@pytest.mark.parametrize("memu_pair", ["pg18", "pg15", "mixed"], indirect=True)``;
    a param is a name of :data:`PAIR_KINDS`, a ``(primary, standby)`` tuple
    or a dict of factory arguments.  Unparametrized: the ``pg18`` pair.
``pg_cluster_factory``
    Factory for single clusters: ``pg_cluster_factory("15", memu=True)`` ->
    a started :class:`PGCluster` (``memu=True`` loads the memU schema, with
    ``vector`` when the installation has pgvector); keyword arguments go to
    :class:`PGCluster`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.pg import (
    PAIR_KINDS,
    MemuPair,
    PGCluster,
    create_memu,
    make_memu_pair,
    require_version,
)

_KINDS = {name: (primary, standby) for name, primary, standby in PAIR_KINDS}


@pytest.fixture
def memu_pair_factory(tmp_path: Path) -> Iterator[Callable[..., MemuPair]]:
    """Factory: ``make(primary_version="18", standby_version="18", vector=None, **kwargs)``."""
    pairs: list[MemuPair] = []

    def make(
        primary_version: str = "18",
        standby_version: str = "18",
        vector: bool | None = None,
        **kwargs: Any,
    ) -> MemuPair:
        for version in (primary_version, standby_version):
            require_version(version)
        pair = make_memu_pair(
            tmp_path / f"pair-{len(pairs) + 1}",
            primary_version,
            standby_version,
            vector,
            **kwargs,
        )
        pairs.append(pair)
        return pair

    try:
        yield make
    finally:
        for pair in reversed(pairs):
            pair.close()


@pytest.fixture
def pg18_pair(memu_pair_factory: Callable[..., MemuPair]) -> MemuPair:
    """Primary 18 -> standby 18 (embedded PostgreSQL, pgvector embeddings)."""
    return memu_pair_factory("18", "18")


@pytest.fixture
def pg15_pair(memu_pair_factory: Callable[..., MemuPair]) -> MemuPair:
    """Primary 15 -> standby 15 (Debian PostgreSQL 15, float8[] embeddings)."""
    return memu_pair_factory("15", "15")


@pytest.fixture
def mixed_pair(memu_pair_factory: Callable[..., MemuPair]) -> MemuPair:
    """Primary 18 -> standby 15 (float8[] embeddings on both sides)."""
    return memu_pair_factory("18", "15")


@pytest.fixture
def memu_pair(
    request: pytest.FixtureRequest, memu_pair_factory: Callable[..., MemuPair]
) -> MemuPair:
    """The pair named by the indirect param (``"pg18"``, ``"pg15"``, ``"mixed"``, a tuple or a dict)."""
    param: Any = getattr(request, "param", "pg18")
    if isinstance(param, str):
        if param not in _KINDS:
            raise ValueError(f"unknown pair kind {param!r}; one of {sorted(_KINDS)}")
        return memu_pair_factory(*_KINDS[param])
    if isinstance(param, dict):
        return memu_pair_factory(**param)
    return memu_pair_factory(*param)


@pytest.fixture
def pg_cluster_factory(tmp_path: Path) -> Iterator[Callable[..., PGCluster]]:
    """Factory: ``make(version="18", *, memu=False, **kwargs)`` -> a started :class:`PGCluster`."""
    clusters: list[PGCluster] = []

    def make(version: str = "18", *, memu: bool = False, **kwargs: Any) -> PGCluster:
        require_version(version)
        cluster = PGCluster(tmp_path / f"pg-{len(clusters) + 1}", version, **kwargs)
        clusters.append(cluster)
        cluster.start()
        if memu:
            create_memu(cluster, vector=cluster.has_pgvector)
        return cluster

    try:
        yield make
    finally:
        for cluster in reversed(clusters):
            cluster.close()
