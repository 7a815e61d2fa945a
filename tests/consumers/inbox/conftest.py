"""The inbox's task store for its tests, on SQLite and on PostgreSQL (the session's own server,
tests/conftest.py, a database per test; or where one is given,
UNGEBUS_TEST_POSTGRES_URL=postgresql+psycopg://inbox@127.0.0.1:5432/inbox_test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.inbox.migrate import migrate
from consumers.inbox.store import TaskStore, connect

ON_BOTH = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@pytest.fixture(params=ON_BOTH)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskStore]:
    """A migrated, empty task store."""
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'inbox.db'}")
    else:
        engine = connect(request.getfixturevalue("postgres_url"))  # an empty database
    migrate(engine)
    migrate(engine)  # idempotent
    yield TaskStore(engine)
    engine.dispose()
