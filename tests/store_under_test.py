"""The store under test, for every suite that persists state: SQLite in the test's state dir by default; with
SHEP_TEST_HARNESS_STORE=postgresql a fresh PostgreSQL schema of its own on SHEP_TEST_POSTGRES_URL, dropped after
the test. `make test` runs the store-touching suites both ways (the Makefile's STORE_SUITES)."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.store import sqlite_url
from tests.postgres_schema import URL_VARIABLE, create_schema, drop_schema

STORE_VARIABLE = "SHEP_TEST_HARNESS_STORE"


@dataclasses.dataclass(frozen=True)
class StoreUnderTest:
    url: str
    state_dir: Path  # the SQLite file's directory, and the `--state-dir` of a `shep` subprocess on either store
    schema: str | None = None  # the PostgreSQL schema; None on SQLite

    @property
    def store_option(self) -> list[str]:
        """`--store URL` on PostgreSQL; nothing on SQLite, whose file is the default one in the state dir."""
        return ["--store", self.url] if self.schema else []

    @property
    def cli_args(self) -> list[str]:
        """What points `shep serve|journal|queue` at this store (and its state dir)."""
        return ["--state-dir", str(self.state_dir), *self.store_option]


def open_store(state_dir: Path, prefix: str = "t") -> StoreUnderTest:
    """A store for one test; `close_store` drops it. Prefer the `store_under_test` context manager."""
    state_dir = Path(state_dir)
    if os.environ.get(STORE_VARIABLE) != "postgresql":
        return StoreUnderTest(sqlite_url(state_dir), state_dir)
    if not os.environ.get(URL_VARIABLE):
        pytest.fail(f"{STORE_VARIABLE}=postgresql needs {URL_VARIABLE}")
    url, schema = create_schema(prefix)
    return StoreUnderTest(url, state_dir, schema)


def close_store(store: StoreUnderTest) -> None:
    if store.schema:
        drop_schema(store.schema)


@contextmanager
def store_under_test(state_dir: Path, prefix: str = "t") -> Iterator[StoreUnderTest]:
    store = open_store(state_dir, prefix)
    try:
        yield store
    finally:
        close_store(store)
