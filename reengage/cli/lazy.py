"""Command groups whose module is imported only when one of their commands is asked for.

Typer reads every command's option types when it builds the app, even for ``--help``; the
call, digest, report and sends commands take the models' enums (SQLAlchemy, half a second
to import), so their groups are declared here by name and help and filled on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, ClassVar

import typer
import typer.main
from typer import _click as click  # typer carries its own click; its groups take its types
from typer.core import TyperGroup


class LazyGroup(TyperGroup):
    """A group that adds its commands from ``source`` (``module:attribute``, a Typer)."""

    source: ClassVar[str]

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        module, attribute = self.source.split(":")
        commands: typer.Typer = getattr(import_module(module), attribute)
        for name, command in typer.main.get_group(commands).commands.items():
            self.add_command(command, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The group's commands, read from their module the first time."""
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """One of the group's commands, read from their module the first time."""
        self._load()
        return super().get_command(ctx, cmd_name)


def add_lazy_group(app: typer.Typer, name: str, source: str, *, help: str) -> None:
    """Add the group ``name`` to ``app``; its commands are the Typer at ``source``."""
    group = type(f"Lazy_{name}", (LazyGroup,), {"source": source})
    app.add_typer(typer.Typer(cls=group, help=help, no_args_is_help=True), name=name)


def commands_typer() -> typer.Typer:
    """A Typer to declare a lazy group's commands on, formatted like the rest of the app."""
    return typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
