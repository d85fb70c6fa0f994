"""Event stores for the serving tests that need a real database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from fusionrec.serving.store import EventStore


def temporary_pg_store() -> Iterator[EventStore]:
    """A :class:`PostgresStore` on tables of its own (dropped afterwards), for ``yield from`` in a fixture.

    Skips the test when ``FUSIONREC_PG_DSN`` is unset or psycopg is missing.
    """
    dsn = os.environ.get("FUSIONREC_PG_DSN")
    if not dsn:
        pytest.skip("PostgreSQL absent: run scripts/ci_services.sh and export FUSIONREC_PG_DSN")
    pytest.importorskip("psycopg")
    from fusionrec.serving.store import PostgresStore

    store = PostgresStore(dsn, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
    try:
        yield store
    finally:
        store.drop()
        store.close()
