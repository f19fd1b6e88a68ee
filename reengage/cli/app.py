"""The ``reengage`` app: settings, consoles and the error handling every command shares."""

from __future__ import annotations

import errno
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from reengage.cli.terminal import SafeConsole
from reengage.errors import ConfigError, ReengageError
from reengage.timeutil import pin_clock

if TYPE_CHECKING:
    from reengage import compose
    from reengage.config import Settings
    from reengage.store import Store

# Every import below the composition root's own is made inside the command that needs it:
# `reengage --help` and the start of every command read no settings library, no database
# driver, no template engine and no web server (tests/test_startup.py).

app = typer.Typer(
    help="Win back customers whose buying habit has lapsed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import CSV files (see README for the columns).", no_args_is_help=True
)
customers_app = typer.Typer(help="Look at customers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(customers_app, name="customers")

# Every print of the command goes through one of these: never a control character from data.
out: Console = SafeConsole(soft_wrap=True)
err: Console = SafeConsole(stderr=True, soft_wrap=True)


class _State:
    settings: Settings | None = None


def _settings() -> Settings:
    if _State.settings is None:
        from reengage.config import load_settings

        _State.settings = load_settings()
    return _State.settings


def _store(upgrade: bool = False) -> Store:
    from reengage.store import Store

    settings = _settings()
    window = timedelta(days=settings.attribution_days)
    return Store.open(
        settings.database_url,
        upgrade=upgrade,
        attribution_window=window,
        connect_timeout=settings.database_connect_timeout,
    )


@app.callback()
def _root() -> None:
    """Read settings and set up logging before any command."""
    from reengage.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.now is not None:
        pin_clock(settings.now)


def _workspace() -> compose.Workspace:
    from reengage import compose

    return compose.Workspace.from_settings(_settings())


def _fail(line: str) -> None:
    # A person at a terminal reads one clear line; the daemon under a supervisor (`run` off a
    # terminal) writes its failure as a JSON log event like every other line it writes.
    if sys.argv[1:2] == ["run"] and not sys.stderr.isatty():
        import structlog

        from reengage.logs import configure_logging

        configure_logging("error")  # JSON off a terminal, even if settings never loaded
        structlog.get_logger(module="reengage").critical("service_failed", error=line)
    else:
        err.print(line, markup=False, highlight=False)


_PATH_HINTS = {
    errno.ENOENT: "its folder does not exist: create it first or choose another path",
    errno.ENOTDIR: "a part of it is a file, not a folder: choose another path",
    errno.EEXIST: "a file is there where a folder is needed: choose another path",
    errno.EISDIR: "it is a folder: give a file name inside it",
    errno.EACCES: "you may not write or read there: choose a path you own",
    errno.EPERM: "you may not write or read there: choose a path you own",
    errno.EROFS: "it is on a read-only file system: choose another path",
    errno.ENOSPC: "the disk is full: free some space or choose another disk",
}


def path_problem(exc: OSError) -> str:
    """One line for a file or folder that could not be read or written, and what to do."""
    hint = _PATH_HINTS.get(exc.errno or 0, "choose another path")
    return f"cannot use {exc.filename}: {exc.strerror or exc} ({hint})"


def main() -> NoReturn:
    """Entry point: run the app; a ReengageError becomes one clear line and a non-zero exit."""
    try:
        # Without standalone mode click hands back typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
    except ConfigError as exc:
        _fail(f"configuration error: {exc}")
        sys.exit(2)
    except ReengageError as exc:
        _fail(f"error: {exc}")
        sys.exit(1)
    except OSError as exc:  # a path given on the command line that cannot be used as asked
        if exc.filename is None:
            raise
        _fail(f"error: {path_problem(exc)}")
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors, without standalone mode
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def parse_day(value: str | None) -> datetime:
    """A day given on the command line (``2026-11-01``) as midnight UTC; today when None."""
    from reengage.timeutil import utcnow

    if value is None:
        return datetime.combine(utcnow().date(), time(), UTC)
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-01") from None
