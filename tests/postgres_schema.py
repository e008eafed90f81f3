"""A PostgreSQL schema of its own per test (on SHEP_TEST_POSTGRES_URL), so tests never share tables.

`new_schema` and `remove_schema` take the base URL explicitly; the benchmark uses them too.
"""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, make_url, text

from tests import system_tools

URL_VARIABLE = "SHEP_TEST_POSTGRES_URL"


def new_schema(base: str, prefix: str) -> tuple[str, str]:
    """(URL whose search_path is a new empty schema on `base`, the schema's name)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def remove_schema(base: str, schema: str) -> None:
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def create_schema(prefix: str) -> tuple[str, str]:
    """A new schema on SHEP_TEST_POSTGRES_URL; skips, naming PostgreSQL, when it is not set."""
    base = os.environ.get(URL_VARIABLE)
    if not base:
        pytest.skip(system_tools.reason("postgresql"))
    return new_schema(base, prefix)


def drop_schema(schema: str) -> None:
    remove_schema(os.environ[URL_VARIABLE], schema)
