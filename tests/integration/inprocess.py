"""``reengage ...`` run inside the test process, as a separate process would have run it.

A subprocess pays about a second of interpreter and import start-up; most CLI tests run a
short command many times. :func:`cli` calls the console script's entry point
(``reengage.cli.main``) here instead and gives back what a subprocess would have: its exit
code, and its stdout and stderr captured apart, as text.

Each call starts from what a fresh ``reengage`` process would find and leaves the test
process as it was, so no call can leak into the next one or into a later test:

- the environment is exactly :func:`tests.conftest.child_env`'s (none of the caller's
  ``REENGAGE_`` settings, then the given ones; on a pinned session clock ``REENGAGE_NOW`` is
  the travelled now), with ``COLUMNS=80`` unless given: a subprocess writing to a pipe gets
  rich's 80 columns, whatever terminal the tests run in;
- the working directory (where the command reads its ``.env``), ``sys.argv`` (the program
  name ``reengage``; the command looks at it) and a ``__main__`` without a package (click
  names the program after it in usage errors: ``reengage``, never ``python -m pytest``);
- stdin is empty and not a terminal, stdout and stderr are captured (never terminals);
- the settings ``reengage.cli.app`` caches, the clock ``REENGAGE_NOW`` pins
  (``reengage.timeutil``), structlog's and the standard library's logging configuration,
  ``sys.excepthook``, warnings filters, signal handlers and the wakeup fd, the asyncio
  event loop policy and its loop, and context variables (the call runs in a copy of the
  context) are put back after the call;
- ``SystemExit`` becomes the exit code as the interpreter would make it; any other
  exception goes through ``sys.excepthook`` as installed at that moment (a traceback, or
  the JSON line the command's logging set-up writes off a terminal) and exits 1.

Commands whose point is a process of their own (``run``, ``web``, ``demo``, signals, kills)
are run as real subprocesses by their tests; ``test_cli.py`` keeps a smoke test of the
installed ``reengage`` script.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import io
import logging
import os
import signal
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from tests.conftest import child_env

# A command that leaves a thread running would keep a real process from exiting (or be cut
# off at exit); here it would run on into later tests. Its threads get this long to end.
_THREAD_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Result:
    """What the command did, as ``subprocess.run(..., capture_output=True, text=True)``."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> Result:
    """Run ``reengage *args`` in this process in ``cwd`` with ``child_env(**env)``."""
    environment = child_env(**dict(env or {}))
    environment.setdefault("COLUMNS", "80")
    stdout, stderr = _buffer("strict"), _buffer("backslashreplace")
    threads = set(threading.enumerate())
    with _isolated(args, cwd, environment, stdout, stderr):
        code = contextvars.copy_context().run(_run_main)
        _join_new_threads(threads, args)
    return Result(args, code, _text(stdout), _text(stderr))


def _run_main() -> int:
    from reengage.cli import main

    try:
        main()
    except SystemExit as stop:
        return _exit_code(stop.code)
    except KeyboardInterrupt:
        raise  # a person's Ctrl-C stops the tests, as it would have stopped them before
    except BaseException:
        kind, error, trace = sys.exc_info()
        assert kind is not None and error is not None
        try:
            sys.excepthook(kind, error, trace)  # as the interpreter reports an uncaught error
        finally:
            del error, trace
        return 1
    return 0


def _exit_code(code: object) -> int:
    # What the interpreter makes of SystemExit(code).
    if code is None:
        return 0
    if isinstance(code, int):
        return code % 256  # as the process's exit status reads it
    print(code, file=sys.stderr)
    return 1


def _buffer(errors: str) -> io.TextIOWrapper:
    # A pipe as a subprocess's Python sees it: UTF-8 text over bytes, not a terminal.
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors=errors, write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue().decode("utf-8")


@contextmanager
def _isolated(
    args: tuple[str, ...],
    cwd: Path,
    environment: dict[str, str],
    stdout: io.TextIOWrapper,
    stderr: io.TextIOWrapper,
) -> Iterator[None]:
    from reengage import timeutil

    command_line = importlib.import_module("reengage.cli.app")  # `reengage.cli.app` is the Typer

    restore: list[Callable[[], None]] = []
    try:
        restore.append(_swap_environment(environment))
        previous_cwd = os.getcwd()
        os.chdir(cwd)
        restore.append(lambda: os.chdir(previous_cwd))
        restore.append(_swap_sys(args, stdout, stderr))
        restore.append(_keep_logging())
        restore.append(_keep_signals())
        restore.append(_keep_event_loop())
        restore.append(_fresh_consoles())
        settings_cache = command_line._State
        restore.append(lambda: setattr(settings_cache, "settings", None))
        settings_cache.settings = None
        clock, pinned = timeutil._Origin, timeutil._Origin.pinned
        restore.append(lambda: setattr(clock, "pinned", pinned))
        clock.pinned = None
        with warnings.catch_warnings():
            yield
    finally:
        for undo in reversed(restore):
            undo()


def _swap_environment(environment: dict[str, str]) -> Callable[[], None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)

    def undo() -> None:
        os.environ.clear()
        os.environ.update(saved)

    return undo


def _swap_sys(
    args: tuple[str, ...], stdout: io.TextIOWrapper, stderr: io.TextIOWrapper
) -> Callable[[], None]:
    saved = (sys.argv, sys.stdin, sys.stdout, sys.stderr, sys.excepthook)
    saved_main = sys.modules["__main__"]
    script = types.ModuleType("__main__")  # the console script's: no package
    script.__file__ = str(Path(sys.executable).with_name("reengage"))
    sys.modules["__main__"] = script
    sys.argv = [script.__file__, *args]
    sys.stdin = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    sys.stdout, sys.stderr = stdout, stderr

    def undo() -> None:
        sys.argv, sys.stdin, sys.stdout, sys.stderr, sys.excepthook = saved
        sys.modules["__main__"] = saved_main

    return undo


def _keep_logging() -> Callable[[], None]:
    was_configured, config = structlog.is_configured(), structlog.get_config()
    manager = logging.Logger.manager
    root = logging.getLogger()

    def state(logger: logging.Logger) -> tuple[Any, ...]:
        return (logger.level, list(logger.handlers), logger.propagate, logger.disabled)

    before = {
        name: state(logger)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_before = state(root)

    def put_back(logger: logging.Logger, saved: tuple[Any, ...]) -> None:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate, logger.disabled = saved[2], saved[3]

    def undo() -> None:
        if was_configured:
            structlog.configure(**config)
        else:
            structlog.reset_defaults()
        for handler in root.handlers:
            if handler not in root_before[1]:
                handler.close()
        put_back(root, root_before)
        for name, logger in list(manager.loggerDict.items()):
            if isinstance(logger, logging.Logger):
                put_back(logger, before.get(name, (logging.NOTSET, [], True, False)))

    return undo


def _fresh_consoles() -> Callable[[], None]:
    # The command's rich consoles are made when their module is imported, once per test
    # process, and keep the width COLUMNS had then (pytest-xdist's workers have COLUMNS=80).
    # A fresh process makes them under its own environment and streams: for the call they
    # get what they would have been made with there, and are put back after it.
    consoles = {
        id(value): value
        for name, module in list(sys.modules.items())
        if name == "reengage" or name.startswith("reengage.")
        for value in list(vars(module).values())
        if isinstance(value, Console)
    }
    saved = [(console, dict(vars(console))) for console in consoles.values()]
    for console in consoles.values():
        console._width = _number(os.environ.get("COLUMNS"))
        console._height = _number(os.environ.get("LINES"))
        console._color_system = console._detect_color_system()
        console.no_color = os.environ.get("NO_COLOR", "") != ""
        console.is_interactive = console.is_terminal and not console.is_dumb_terminal

    def undo() -> None:
        for console, state in saved:
            vars(console).clear()
            vars(console).update(state)

    return undo


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _keep_signals() -> Callable[[], None]:
    handlers: dict[signal.Signals, Any] = {}
    for number in signal.valid_signals():
        try:
            handlers[number] = signal.getsignal(number)
        except (OSError, ValueError):
            continue
    main_thread = threading.current_thread() is threading.main_thread()
    wakeup = -1
    if main_thread:
        wakeup = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(wakeup)

    def undo() -> None:
        for number, handler in handlers.items():
            if handler is not None and signal.getsignal(number) is not handler:
                signal.signal(number, handler)
        if main_thread:
            signal.set_wakeup_fd(wakeup)

    return undo


def _keep_event_loop() -> Callable[[], None]:
    policy = asyncio.get_event_loop_policy()
    local = getattr(policy, "_local", None)
    loop = getattr(local, "_loop", None)

    def undo() -> None:
        if asyncio.get_event_loop_policy() is not policy:
            asyncio.set_event_loop_policy(policy)
        if getattr(local, "_loop", None) is not loop:
            policy.set_event_loop(loop)

    return undo


def _join_new_threads(before: set[threading.Thread], args: tuple[str, ...]) -> None:
    deadline = time.monotonic() + _THREAD_GRACE_SECONDS
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [thread.name for thread in set(threading.enumerate()) - before]
    if left:
        raise RuntimeError(
            f"`reengage {' '.join(args)}` left threads running ({', '.join(sorted(left))}): "
            "run it as a subprocess"
        )
