"""Schema migrations (Alembic): one history and one version table per component, applied under the store's lock.

The gateway, the portal and the clinic's АЖО each own their tables; they may share one database (the parties
run on the gateway store's engine by default) or have their own, and their version tables (`shep_schema_<name>`)
keep the histories apart. Alembic runs on the caller's engine: no alembic.ini. A contributor adds a revision
with `python -m gateway.store.migrations COMPONENT "message"` (docs/deployment.md).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.store import exclusive

log = logging.getLogger("shep.store")

# env.py and script.py.mako, shared by every history; each component keeps its revisions in its own versions/.
_ENVIRONMENT = Path(__file__).resolve().parent / "alembic"

# Alembic's `context` and `op` are module-level proxies: one migration at a time in a process (taken before the
# store's lock, always in that order).
_ALEMBIC = threading.Lock()


class MigrationError(RuntimeError):
    """A database this version cannot migrate safely on its own."""


@dataclass(frozen=True)
class Component:
    name: str
    versions: Path
    metadata: Callable[[], sqlalchemy.MetaData]  # the tables as the code declares them (autogenerate)
    baseline_tables: tuple[str, ...]  # what metadata.create_all made before there were migrations

    @property
    def version_table(self) -> str:
        return f"shep_schema_{self.name}"


def _versions(package: str) -> Path:
    # find_spec imports only the parent package: listing the components stays cheap.
    return Path(importlib.util.find_spec(package).submodule_search_locations[0]) / "versions"


def _metadata(module: str) -> Callable[[], sqlalchemy.MetaData]:
    return lambda: importlib.import_module(module).metadata


COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component("gateway", _versions("gateway.store"), _metadata("gateway.store.schema"),
              ("seen_messages", "journal", "journal_head", "async_messages")),
    Component("portal", _versions("endpoints.portal"), _metadata("endpoints.portal.tables"),
              ("portal_citizens", "portal_sessions", "portal_requests", "portal_inbox")),
    Component("clinic", _versions("endpoints.provider"), _metadata("endpoints.provider.store"),
              ("ajo_sessions", "ajo_requests", "ajo_attachments")),
)}


@dataclass(frozen=True)
class State:
    """Where a component's tables stand in one database."""
    component: str
    revision: str | None  # None: no tables yet, or tables from before migrations (`predates`)
    head: str
    baseline: str
    predates: bool  # tables made before migrations, not stamped yet
    known: bool  # the revision is in this version's history (False: a newer shep migrated it)

    @property
    def at_head(self) -> bool:
        return self.revision == self.head


@dataclass(frozen=True)
class Upgrade:
    component: str
    before: str | None
    after: str
    stamped: str | None  # the baseline, when tables from before migrations were adopted


def _component(component: str | Component) -> Component:
    return COMPONENTS[component] if isinstance(component, str) else component


def _config(component: Component, connection: sqlalchemy.Connection | None) -> Config:
    config = Config()
    for option, value in (("script_location", str(_ENVIRONMENT)), ("version_locations", str(component.versions)),
                          ("path_separator", "os"), ("file_template", "%(rev)s_%(slug)s")):
        config.set_main_option(option, value.replace("%", "%%"))  # ConfigParser interpolates %
    config.attributes.update(component=component, connection=connection)
    return config


def history(component: str | Component) -> ScriptDirectory:
    """The component's revisions, as Alembic reads them."""
    return ScriptDirectory.from_config(_config(_component(component), None))


def state(connection: sqlalchemy.Connection, component: str | Component) -> State:
    """Read-only: the component's revision in the connection's database, and this version's head."""
    component = _component(component)
    script = history(component)
    context = MigrationContext.configure(connection, opts={"version_table": component.version_table})
    revision = context.get_current_revision()
    known = {r.revision for r in script.walk_revisions()}
    return State(component.name, revision, script.get_current_head(), script.get_base(),
                 predates=revision is None and _predates_migrations(connection, component),
                 known=revision is None or revision in known)


def upgrade(engine: sqlalchemy.Engine, component: str | Component) -> Upgrade:
    """Bring the component's tables to head, alone among the processes sharing the database.

    Tables made before there were migrations are stamped at the baseline first, keeping their rows.
    """
    component = _component(component)
    with _ALEMBIC, exclusive(engine) as connection:
        before = state(connection, component)
        if not before.known:
            raise MigrationError(f"{component.name}: the database is at revision {before.revision}, which this "
                                 f"version does not know (its head is {before.head}): a newer shep migrated it")
        config = _config(component, connection)
        if before.predates:
            command.stamp(config, before.baseline)
        # Alembic runs inside the locked transaction and commits nothing itself: all of it commits, or none.
        command.upgrade(config, "head")
        after = state(connection, component).revision
    result = Upgrade(component.name, before.revision, after, before.baseline if before.predates else None)
    if result.stamped:
        log.info("schema %s: tables from before migrations stamped at %s", component.name, result.stamped)
    if result.before != after:
        log.info("schema %s: %s → %s", component.name, result.before or "empty", after)
    return result


def run_environment(context) -> None:
    """The body of env.py: migrate the connection `upgrade` (or `revision`) put in the config's attributes."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise MigrationError("these migrations run through gateway.store.migrations (shep db upgrade), "
                             "on a connection, not from the alembic command")
    context.configure(connection=connection, version_table=config.attributes["component"].version_table,
                      target_metadata=config.attributes.get("target_metadata"),
                      # SQLite alters a table by copying it: autogenerate writes the form both dialects run.
                      render_as_batch=True, render_item=_render_item)
    with context.begin_transaction():
        context.run_migrations()


def _render_item(kind: str, obj, autogen_context) -> str | bool:
    # A revision must not import the code it migrates: a TypeDecorator is written as the type the database sees.
    if kind == "type" and isinstance(obj, sqlalchemy.types.TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def _predates_migrations(connection: sqlalchemy.Connection, component: Component) -> bool:
    inspector = sqlalchemy.inspect(connection)
    present = [name for name in component.baseline_tables if inspector.has_table(name)]
    if present and len(present) < len(component.baseline_tables):
        missing = [name for name in component.baseline_tables if name not in present]
        raise MigrationError(f"{component.name}: the database has {', '.join(present)} but not {', '.join(missing)} "
                             f"and no {component.version_table}: it was not made by shep; repair it by hand")
    return bool(present)


def revision(component: str | Component, message: str) -> Path:
    """A new revision in the component's versions/: what its MetaData has that its head lacks.

    Autogenerated on an empty in-memory SQLite database: review it, since autogenerate misses renames
    and dialect-specific details, and test it on PostgreSQL too.
    """
    component = _component(component)
    engine = sqlalchemy.create_engine("sqlite://")
    try:
        with _ALEMBIC, engine.begin() as connection:
            config = _config(component, connection)
            command.upgrade(config, "head")
            config.attributes["target_metadata"] = component.metadata()
            count = sum(1 for _ in history(component).walk_revisions())
            script = command.revision(config, message, autogenerate=True, rev_id=f"{count + 1:04d}")
    finally:
        engine.dispose()
    return Path(script.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.store.migrations",
                                     description="write a new revision from the difference between a "
                                                 "component's tables and its migrations' head")
    parser.add_argument("component", choices=sorted(COMPONENTS))
    parser.add_argument("message", help="what the revision does, in a few words (its file name's slug)")
    args = parser.parse_args(argv)
    print(revision(args.component, args.message))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
