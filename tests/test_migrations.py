"""Schema migrations (gateway/store/migrations.py) on SQLite and, when SHEP_TEST_POSTGRES_URL is set, PostgreSQL:
head equals the tables the code declares, upgrades repeat and race safely, databases made before migrations are
adopted with their rows, and `shep db upgrade|current` report it."""
from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from endpoints.portal.config import PortalSettings
from endpoints.portal.service import Portal
from endpoints.portal.tables import UtcDateTime
from endpoints.provider.store import ProviderStore
from gateway.store import Store, migrations, sqlite_url
from tests.postgres_schema import create_schema, drop_schema
from tests.serve_process import shep

COMPONENTS = sorted(migrations.COMPONENTS)
# In the order `shep db` reports them.
CLI_ORDER = ("gateway", "portal", "clinic")
SCRIPTS = {name: migrations.history(name) for name in COMPONENTS}
HEAD = {name: script.get_current_head() for name, script in SCRIPTS.items()}
BASELINE = {name: script.get_base() for name, script in SCRIPTS.items()}
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# One row per component, written before migrations existed, that an upgrade must keep.
ROWS = {
    "gateway": ("seen_messages", {"sender_id": "demo-consumer", "message_id": "m-1", "seen_at": NOW}),
    "portal": ("portal_citizens", {"iin": "900101300123", "password_hash": "x", "surname": "Ахметов",
                                   "name": "Ерлан", "birth_date": date(1990, 1, 1), "registered_at": NOW,
                                   "failed_logins": 0}),
    "clinic": ("ajo_attachments", {"iin": "900101300123", "surname": "Ахметов", "name": "Ерлан",
                                   "birth_date": date(1990, 1, 1), "clinic_bin": "120340001234",
                                   "clinic_name": "Поликлиника №1", "district_number": "7", "district_kind": "GP",
                                   "doctor": "Сейткали А.", "attach_date": date(2025, 2, 3), "reason": "FREE_CHOICE",
                                   "channel": "PORTAL", "request_id": "R-20250203-000001", "coupon_number": "C-1",
                                   "home_visit": False, "counted_change": True}),
}


class Databases:
    """Fresh empty databases of one dialect: SQLite files, or PostgreSQL schemas dropped afterwards."""

    def __init__(self, dialect: str, tmp_path: Path):
        self.dialect = dialect
        self.tmp_path = tmp_path
        self.stores: list[Store] = []
        self.schemas: list[str] = []
        self.made = 0

    def url(self) -> str:
        self.made += 1
        if self.dialect == "sqlite":
            return sqlite_url(self.tmp_path / f"db{self.made}")
        url, schema = create_schema("mig")
        self.schemas.append(schema)
        return url

    def store(self, url: str | None = None) -> Store:
        store = Store(url or self.url())
        self.stores.append(store)
        return store

    def close(self) -> None:
        for store in self.stores:
            store.close()
        for schema in self.schemas:
            drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path):
    made = Databases(request.param, tmp_path)
    try:
        yield made
    finally:
        made.close()


def metadata(name: str) -> sa.MetaData:
    return migrations.COMPONENTS[name].metadata()


def differences(store: Store, name: str, target: sa.MetaData | None = None) -> list:
    """Alembic's autogenerate comparison of the database with the MetaData, leaving aside the version table and
    the other components' tables (which may share the database); any other table counts."""
    component = migrations.COMPONENTS[name]
    others = {table for other in COMPONENTS if other != name
              for table in (*metadata(other).tables, migrations.COMPONENTS[other].version_table)}
    with store.snapshot() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": component.version_table, "compare_type": True,
            "include_name": lambda found, kind, parents: kind != "table" or found not in others})
        return compare_metadata(context, target if target is not None else component.metadata())


def reflected(store: Store, tables) -> dict:
    """What the database says about each table: columns with types and defaults, keys, indexes, constraints."""
    with store.snapshot() as conn:
        inspector = sa.inspect(conn)
        return {table: {
            "columns": [{**column, "type": str(column["type"])} for column in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": inspector.get_foreign_keys(table),
            "indexes": sorted(({**index, "dialect_options": {k: str(v) for k, v in index["dialect_options"].items()}}
                               for index in inspector.get_indexes(table)), key=lambda index: index["name"]),
            "unique": sorted(inspector.get_unique_constraints(table), key=lambda unique: unique["column_names"]),
            "checks": sorted(inspector.get_check_constraints(table), key=lambda check: check["name"] or ""),
            # SQLite keeps the DDL itself: it must be the very statements create_all issues (a table a migration
            # rebuilt and renamed has its name quoted, the one difference SQLite itself makes).
            "sql": sorted(statement.replace(f'CREATE TABLE "{table}"', f"CREATE TABLE {table}", 1)
                          for statement in conn.execute(sa.text(
                              "SELECT sql FROM sqlite_master WHERE tbl_name = :t AND sql IS NOT NULL"),
                              {"t": table}).scalars()) if conn.dialect.name == "sqlite" else None,
        } for table in sorted(tables)}


def tables(store: Store) -> set[str]:
    with store.snapshot() as conn:
        return set(sa.inspect(conn).get_table_names())


def versions(store: Store, name: str) -> list[str]:
    with store.snapshot() as conn:
        table = migrations.COMPONENTS[name].version_table
        return conn.execute(sa.text(f"SELECT version_num FROM {table}")).scalars().all()


def create_baseline(conn, name: str) -> None:
    """metadata.create_all as shep ran it before migrations: only the tables there were then."""
    declared = metadata(name).tables
    metadata(name).create_all(conn, tables=[declared[table] for table in migrations.COMPONENTS[name].baseline_tables])


def predating(databases: Databases, names) -> Store:
    """A database as shep made it before migrations: metadata.create_all, one row in each component."""
    store = databases.store()
    with store.engine.begin() as conn:
        for name in names:
            create_baseline(conn, name)
            table, row = ROWS[name]
            conn.execute(metadata(name).tables[table].insert().values(**row))
    return store


# --- head is what the code declares --------------------------------------------------------------------

@pytest.mark.parametrize("name", COMPONENTS)
def test_head_has_no_differences_from_the_metadata(databases, name):
    store = databases.store()
    done = migrations.upgrade(store.engine, name)
    assert (done.before, done.after, done.stamped) == (None, HEAD[name], None)
    assert differences(store, name) == []
    assert tables(store) == set(metadata(name).tables) | {f"shep_schema_{name}"}


@pytest.mark.parametrize("name", COMPONENTS)
def test_head_reflects_exactly_as_create_all(databases, name):
    """Stricter than autogenerate: sequences, check constraints and partial indexes too."""
    migrated, created = databases.store(), databases.store()
    migrations.upgrade(migrated.engine, name)
    with created.engine.begin() as conn:
        metadata(name).create_all(conn)
    assert reflected(migrated, metadata(name).tables) == reflected(created, metadata(name).tables)


def test_a_difference_is_seen(databases):
    """The comparison the tests above rely on does report a column the database lacks."""
    store = databases.store()
    migrations.upgrade(store.engine, "portal")
    wider = sa.MetaData()
    for table in metadata("portal").tables.values():
        table.to_metadata(wider)
    sa.Table("portal_inbox", wider, sa.Column("extra", sa.String(10)), extend_existing=True)
    assert [(d[0], d[3].name) for d in differences(store, "portal", wider)] == [("add_column", "extra")]


@pytest.mark.parametrize("name", COMPONENTS)
def test_baseline_tables_are_what_the_baseline_creates(databases, name):
    component = migrations.COMPONENTS[name]
    store = databases.store()
    with store.engine.begin() as conn:
        command.upgrade(migrations._config(component, conn), BASELINE[name])
    assert tables(store) == set(component.baseline_tables) | {component.version_table}


def test_components_share_one_database_with_their_own_version_tables(databases):
    store = databases.store()
    for name in COMPONENTS:
        migrations.upgrade(store.engine, name)
    with store.snapshot() as conn:
        states = [migrations.state(conn, name) for name in COMPONENTS]
    assert all(s.at_head and not s.predates for s in states), states
    for name in COMPONENTS:
        assert versions(store, name) == [HEAD[name]]
        assert differences(store, name) == []
    everything = set().union(*(metadata(name).tables for name in COMPONENTS))
    assert tables(store) == everything | {f"shep_schema_{name}" for name in COMPONENTS}


# --- repeated, concurrent, pre-migration, newer --------------------------------------------------------

@pytest.mark.parametrize("name", COMPONENTS)
def test_upgrade_is_idempotent_and_keeps_rows(databases, name):
    store = databases.store()
    first = migrations.upgrade(store.engine, name)
    table, row = ROWS[name]
    with store.engine.begin() as conn:
        conn.execute(metadata(name).tables[table].insert().values(**row))
    again = migrations.upgrade(store.engine, name)
    assert again.before == again.after == first.after and again.stamped is None
    assert versions(store, name) == [first.after]
    with store.snapshot() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(metadata(name).tables[table])).scalar() == 1


def upgrade_when_all_are_ready(url: str, barrier, results) -> None:
    """One process of test_concurrent_upgrades_run_one_at_a_time."""
    store = Store(url)
    try:
        barrier.wait(timeout=60)
        results.put([(done.before, done.after) for done in (migrations.upgrade(store.engine, name)
                                                            for name in COMPONENTS)])
    except BaseException as exc:  # reported by the test, with the others
        results.put(repr(exc))
    finally:
        store.close()


def test_concurrent_upgrades_run_one_at_a_time(databases):
    """Processes starting at once on an empty database: each upgrade waits for the store's lock (PostgreSQL's
    advisory lock, SQLite's BEGIN IMMEDIATE), so exactly one creates each component's tables."""
    url = databases.url()
    workers = 4
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(workers), spawn.Queue()
    processes = [spawn.Process(target=upgrade_when_all_are_ready, args=(url, barrier, results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    assert all(isinstance(outcome, list) for outcome in outcomes), outcomes
    store = databases.store(url)
    for index, name in enumerate(COMPONENTS):
        befores = sorted(str(outcome[index][0]) for outcome in outcomes)
        assert befores == [HEAD[name]] * (workers - 1) + ["None"], (name, outcomes)
        assert {outcome[index][1] for outcome in outcomes} == {HEAD[name]}
        assert versions(store, name) == [HEAD[name]]


@pytest.mark.parametrize("name", COMPONENTS)
def test_database_from_before_migrations_is_stamped_and_keeps_its_rows(databases, name):
    store = predating(databases, [name])
    with store.snapshot() as conn:
        before = migrations.state(conn, name)
    assert before.revision is None and before.predates and not before.at_head
    done = migrations.upgrade(store.engine, name)
    assert done.stamped == before.baseline and done.before is None and done.after == before.head
    assert versions(store, name) == [before.head]
    assert differences(store, name) == []
    table, row = ROWS[name]
    with store.snapshot() as conn:
        rows = conn.execute(sa.select(metadata(name).tables[table])).mappings().all()
    assert [{k: r[k] for k in row} for r in rows] == [row]


def test_partly_present_tables_are_refused_untouched(databases):
    store = databases.store()
    with store.engine.begin() as conn:
        metadata("gateway").tables["journal"].create(conn)
    with pytest.raises(migrations.MigrationError, match="has journal but not seen_messages"):
        migrations.upgrade(store.engine, "gateway")
    assert tables(store) == {"journal"}


def test_revision_unknown_to_this_version_is_refused(databases):
    store = databases.store()
    migrations.upgrade(store.engine, "clinic")
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE shep_schema_clinic SET version_num = '9999'"))
    with pytest.raises(migrations.MigrationError, match="at revision 9999, which this version does not know"):
        migrations.upgrade(store.engine, "clinic")
    with store.snapshot() as conn:
        assert not migrations.state(conn, "clinic").known


def test_the_parties_migrate_their_tables_when_they_start(databases, tmp_path):
    """Portal and ProviderStore run the shared helper: a pre-migration database is adopted, not failed."""
    store = predating(databases, ["portal", "clinic"])
    ProviderStore(store.engine)
    Portal(PortalSettings(state_dir=tmp_path, password_iterations=1), engine=store.engine, gateway=None,
           validator=None)
    for name in ("portal", "clinic"):
        assert versions(store, name) == [HEAD[name]]
    assert "shep_schema_gateway" not in tables(store)


# --- adding a revision (docs/deployment.md) ------------------------------------------------------------

def test_revision_writes_what_the_metadata_adds(databases, tmp_path):
    history = tmp_path / "versions"
    shutil.copytree(migrations.COMPONENTS["portal"].versions, history, ignore=shutil.ignore_patterns("__pycache__"))
    wider = sa.MetaData()
    for table in metadata("portal").tables.values():
        table.to_metadata(wider)
    sa.Table("portal_citizens", wider, sa.Column("phone", sa.String(20)), sa.Column("verified_at", UtcDateTime),
             extend_existing=True)
    component = dataclasses.replace(migrations.COMPONENTS["portal"], versions=history, metadata=lambda: wider)

    head = max(name.name[:4] for name in history.glob("[0-9][0-9][0-9][0-9]_*.py"))
    following = f"{int(head) + 1:04d}"
    path = migrations.revision(component, "citizens' phone")
    assert path.parent == history and path.name == f"{following}_citizens_phone.py"
    source = path.read_text()
    assert f"down_revision = '{head}'" in source
    assert "add_column(sa.Column('phone', sa.String(length=20)" in source
    # The code's TypeDecorator is written as the type the database sees: the revision imports no project code.
    assert "add_column(sa.Column('verified_at', sa.DateTime()" in source and "endpoints" not in source

    store = databases.store()
    done = migrations.upgrade(store.engine, component)
    assert (done.before, done.after) == (None, following)
    assert differences(store, "portal", wider) == []
    assert sorted((d[0], d[3].name) for d in differences(store, "portal")) == [("remove_column", "phone"),
                                                                             ("remove_column", "verified_at")]


def test_a_failing_revision_leaves_nothing_behind(databases, tmp_path):
    """The whole upgrade is one transaction: a revision that fails undoes the ones before it in the same run."""
    history = tmp_path / "versions"
    shutil.copytree(migrations.COMPONENTS["clinic"].versions, history, ignore=shutil.ignore_patterns("__pycache__"))
    (history / "9999_fails.py").write_text(
        f"import sqlalchemy as sa\nfrom alembic import op\n\nrevision = '9999'\ndown_revision = '{HEAD['clinic']}'\n"
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n"
        "    op.create_table('half_done', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    raise RuntimeError('revision 9999 fails')\n")
    component = dataclasses.replace(migrations.COMPONENTS["clinic"], versions=history)
    store = databases.store()
    with pytest.raises(RuntimeError, match="revision 9999 fails"):
        migrations.upgrade(store.engine, component)
    assert tables(store) == set()


# --- shep db -------------------------------------------------------------------------------------------

@pytest.fixture
def cli(databases, tmp_path):
    """(a store, the options that point `shep db` at it): --state-dir on SQLite, --store on PostgreSQL. The
    shipped configuration runs all three components on it."""
    if databases.dialect == "sqlite":
        state_dir = tmp_path / "state"
        return databases.store(sqlite_url(state_dir)), ["--state-dir", str(state_dir)]
    store = databases.store()
    return store, ["--store", store.engine.url.render_as_string(hide_password=False)]


def shep_db(cli, command_name: str, cwd: Path):
    return shep("db", command_name, *cli[1], cwd=cwd)


def test_db_upgrade_then_current(cli, tmp_path):
    store = cli[0]
    current = shep_db(cli, "current", tmp_path)
    assert current.returncode == 1, current.stderr
    assert current.stdout.splitlines() == [f"{name:<8} none (head is {HEAD[name]}: run shep db upgrade)"
                                           for name in CLI_ORDER]

    upgraded = shep_db(cli, "upgrade", tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.splitlines() == [f"{name:<8} none → {HEAD[name]}" for name in CLI_ORDER]
    for name in COMPONENTS:
        assert versions(store, name) == [HEAD[name]]
        assert differences(store, name) == []

    again = shep_db(cli, "upgrade", tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{name:<8} {HEAD[name]} (already at head)" for name in CLI_ORDER]
    current = shep_db(cli, "current", tmp_path)
    assert current.returncode == 0, current.stderr
    assert current.stdout.splitlines() == [f"{name:<8} {HEAD[name]} (head)" for name in CLI_ORDER]


def test_db_upgrade_adopts_a_database_from_before_migrations(cli, tmp_path):
    store = cli[0]
    with store.engine.begin() as conn:
        for name in COMPONENTS:
            create_baseline(conn, name)
            table, row = ROWS[name]
            conn.execute(metadata(name).tables[table].insert().values(**row))
    current = shep_db(cli, "current", tmp_path)
    assert current.returncode == 1, current.stderr
    assert current.stdout.splitlines() == [
        f"{name:<8} none (tables from before migrations; shep db upgrade stamps them at {BASELINE[name]})"
        for name in CLI_ORDER]

    upgraded = shep_db(cli, "upgrade", tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    lines = upgraded.stdout.splitlines()
    for name in CLI_ORDER:
        assert f"{name:<8} tables from before migrations, stamped {BASELINE[name]}" in lines
        assert f"{name:<8} none → {HEAD[name]}" in lines
    for name in COMPONENTS:
        assert versions(store, name) == [HEAD[name]]
        table, row = ROWS[name]
        with store.snapshot() as conn:
            rows = conn.execute(sa.select(metadata(name).tables[table])).mappings().all()
        assert [{k: r[k] for k in row} for r in rows] == [row]


def test_db_upgrade_refuses_partly_present_tables(cli, tmp_path):
    store = cli[0]
    with store.engine.begin() as conn:
        metadata("portal").tables["portal_citizens"].create(conn)
    upgraded = shep_db(cli, "upgrade", tmp_path)
    assert upgraded.returncode == 2
    assert upgraded.stderr.splitlines()[-1].startswith(
        "shep db upgrade: portal: the database has portal_citizens but not")
    assert "Traceback" not in upgraded.stderr
    # The gateway, upgraded first in its own transaction, stays upgraded; the portal got nothing.
    assert versions(store, "gateway") == [HEAD["gateway"]]
    assert tables(store) - set(metadata("gateway").tables) == {"shep_schema_gateway", "portal_citizens"}
