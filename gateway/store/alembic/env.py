"""Alembic's environment for every component's history; gateway/store/migrations.py runs it on its connection."""
from alembic import context

from gateway.store.migrations import run_environment

run_environment(context)
