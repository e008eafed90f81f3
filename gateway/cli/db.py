"""`shep db upgrade | current`: the store's schema migrations, per component (gateway, portal, clinic)."""
from __future__ import annotations

from gateway.cli import common


def _databases(args, *, existing: bool) -> dict[str, list[str]]:
    """The components this configuration runs, by store URL: the parties share the gateway's store unless
    `[portal]` names its own, as `shep serve` wires them."""
    settings = common.settings(args)
    url = common.store_url(args, existing=existing)
    databases = {url: ["gateway"]}
    if "portal" in settings.endpoints:
        databases.setdefault(settings.endpoints["portal"].get("store_url") or url, []).append("portal")
    if "clinic" in settings.endpoints:
        databases[url].append("clinic")
    return databases


def cmd_upgrade(args) -> int:
    from gateway.store import Store, migrations

    for url, components in _databases(args, existing=False).items():
        store = Store(url)
        try:
            for name in components:
                try:
                    done = migrations.upgrade(store.engine, name)
                except migrations.MigrationError as exc:
                    raise common.CommandError(str(exc)) from None
                if done.stamped:
                    print(f"{name:<8} tables from before migrations, stamped {done.stamped}")
                print(f"{name:<8} {done.before or 'none'} → {done.after}" if done.before != done.after
                      else f"{name:<8} {done.after} (already at head)")
        finally:
            store.close()
    return 0


def cmd_current(args) -> int:
    """Read-only: each component's revision; exit 1 when one is not at this version's head."""
    from gateway.store import Store, migrations

    behind = False
    for url, components in _databases(args, existing=True).items():
        store = Store(url)
        try:
            with store.snapshot() as conn:
                for name in components:
                    try:
                        now = migrations.state(conn, name)
                    except migrations.MigrationError as exc:
                        raise common.CommandError(str(exc)) from None
                    if now.at_head:
                        note = "head"
                    elif not now.known:
                        note = f"unknown to this version, whose head is {now.head}"
                    elif now.predates:
                        note = f"tables from before migrations; shep db upgrade stamps them at {now.baseline}"
                    else:
                        note = f"head is {now.head}: run shep db upgrade"
                    behind = behind or not now.at_head
                    print(f"{name:<8} {now.revision or 'none'} ({note})")
        finally:
            store.close()
    return 1 if behind else 0


def register(sub) -> None:
    db = sub.add_parser("db", help="the store's schema: apply migrations, or show where each component stands")
    dsub = db.add_subparsers(dest="db_command", required=True)
    upgrade = dsub.add_parser("upgrade", help="apply pending migrations (shep serve also does at start)")
    common.add_common(upgrade)
    upgrade.set_defaults(func=cmd_upgrade)
    current = dsub.add_parser("current", help="each component's revision; exit 1 when one is not at head")
    common.add_common(current)
    current.set_defaults(func=cmd_current)
