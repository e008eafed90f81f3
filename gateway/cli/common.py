"""What the `shep` commands share: the configuration, the state dir, the store, and their one-line errors."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway import statedir
from gateway.config import Settings, default_config_path, load_config


class CommandError(Exception):
    """A user-facing failure: `shep <command>: <message>` on stderr, exit status 2, never a traceback."""


def settings(args) -> Settings:
    """The configuration of --config (default: the shipped one), read once per command."""
    if getattr(args, "_settings", None) is None:
        args._settings = load_config(Path(args.config) if getattr(args, "config", None) else default_config_path())
    return args._settings


def state(args, *, must_exist: bool = False, announce: bool = True) -> statedir.StateDir:
    """The state dir this command uses, said once on stderr (`shep serve` says it in its banner); with
    `must_exist`, a missing one is an error: a command that reads state must not report an empty success, or
    create a new state, in the wrong place."""
    if getattr(args, "_state", None) is None:
        config = settings(args)
        args._state = statedir.resolve(getattr(args, "state_dir", None), config.gateway.state_dir, config.source)
        if announce:
            print(args._state.describe(), file=sys.stderr, flush=True)
    if must_exist and (problem := args._state.missing()):
        raise CommandError(problem)
    return args._state


def shown_url(url: str) -> str:
    """A store URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def store_url(args, *, existing: bool) -> str:
    """--store, else the config's store_url, else SQLite in the state dir. With `existing`, that SQLite database
    must be there already (the command reads what a server wrote)."""
    from gateway.store import sqlite_url

    url = args.store_url or settings(args).gateway.store_url
    if url:
        print(f"store: {shown_url(url)}", file=sys.stderr, flush=True)
        return url
    found = state(args, must_exist=existing)
    if existing and not (found.path / "shep.db").is_file():
        raise CommandError(f"no store in {found.path} (shep.db is missing): is it the state dir of a server that "
                           "has run?")
    return sqlite_url(found.path)


def open_store(args, *, existing: bool = True):
    """The store, its schema brought to this version's head, as `shep serve` does."""
    from gateway.store import Store

    store = Store(store_url(args, existing=existing))
    try:
        store.create_schema()
    except BaseException:
        store.close()
        raise
    return store


def store_argument(value: str) -> str:
    """`postgresql://…` means the psycopg driver the project ships with; other URLs pass as given."""
    for plain in ("postgresql://", "postgres://"):
        if value.startswith(plain):
            return "postgresql+psycopg://" + value[len(plain):]
    return value


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML configuration (default: the shipped gateway/defaults/shep.toml)")
    p.add_argument("--state-dir", help=f"the state dir: the SQLite store, the test PKI, the journal's checkpoints "
                                       f"(default: ${statedir.ENV}, else the config's gateway.state_dir, else "
                                       f"$XDG_STATE_HOME/shep, i.e. ~/.local/state/shep)")
    p.add_argument("--store", "--store-url", dest="store_url", type=store_argument,
                   help="the store: postgresql://user@host/db or an SQLAlchemy URL (default: SQLite in the state dir)")
