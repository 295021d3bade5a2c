"""``rrbench list KIND`` and ``rrbench plugins``: what is registered, and by whom."""

from __future__ import annotations

from typing import Any

import click

from rrbench.cli.output import echo_json
from rrbench.components.registry import get_registry, strict_mode
from rrbench.components.specs import KINDS


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_components(kind: str, as_json: bool) -> None:
    """List registered components of one KIND."""

    registry = get_registry()
    entries = registry.list(kind)
    if as_json:
        rows = []
        for e in entries:
            row = {"id": e.id, "aliases": list(e.spec.aliases), "plugin": e.plugin,
                   "distribution": e.distribution, "description": e.spec.description}
            row.update({k: v for k, v in e.spec.summary().items() if k not in row and k not in ("loader",)})
            rows.append(row)
        echo_json(rows)
        return
    if not entries:
        click.echo(f"no {kind} registered")
        return
    width = max(len(e.id) for e in entries)
    for e in entries:
        aliases = f" (aliases: {', '.join(e.spec.aliases)})" if e.spec.aliases else ""
        click.echo(f"{e.id:<{width}}  [{e.plugin}]  {e.spec.description}{aliases}")
    for clash in registry.clashes():
        if clash.kind == kind:
            click.echo(f"CLASH: {kind[:-1]} name {clash.name!r} is registered by {', '.join(clash.plugins)}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--trace", is_flag=True, help="Show the loading order and what each plugin registered or why it was "
                                            "skipped.")
def plugins(as_json: bool, trace: bool) -> None:
    """Show installed plugins: distribution, version, hooks, status, problems and name clashes."""

    registry = get_registry()
    rows: list[dict[str, Any]] = [
        {"name": p.name, "distribution": p.distribution, "version": p.version, "editable": p.editable,
         "status": p.status, "reason": p.reason, "hooks": p.hooks, "components": p.counts,
         "registered": p.registered, "problems": p.problems} for p in registry.plugins.values()]
    clashes = [{"kind": c.kind, "name": c.name, "plugins": list(c.plugins)} for c in registry.clashes()]
    if as_json:
        echo_json({"plugins": rows, "clashes": clashes, "notices": registry.notices, "trace": registry.trace,
                    "strict": strict_mode()})
        return
    if trace:
        for line in registry.trace:
            click.echo(line)
        click.echo("")
    for row in rows:
        counts = ", ".join(f"{n} {k}" for k, n in row["components"].items()) or "nothing registered"
        editable = ", editable" if row["editable"] else ""
        click.echo(f"{row['name']} ({row['distribution'] or '-'} {row['version'] or ''}{editable}) [{row['status']}] "
                   f"hooks: {', '.join(row['hooks']) or '-'}; {counts}")
        if row["reason"]:
            click.echo(f"    reason: {row['reason']}")
        for problem in row["problems"]:
            if problem != row["reason"] and row["reason"] not in problem:
                click.echo(f"    problem: {problem}")
    for c in clashes:
        click.echo(f"CLASH: {c['kind'][:-1]} name {c['name']!r} registered by {', '.join(c['plugins'])} "
                   f"(use the qualified names)")
    for notice in registry.notices:
        if not any(notice in row["problems"] for row in rows):
            click.echo(f"notice: {notice}")
