"""The ``rrbench`` command line: a thin layer over the Python API.

Exit codes: 0 ok; 2 bad input or usage (unknown id, bad spec, missing weights); 1 runtime failure (a plugin that
returns NaN or the wrong number of scores, ...); 130 interrupted.

Start-up: every command arrives through the ``register_commands`` hook, rrbench's own included (the table in
:mod:`rrbench.cli.groups`, added by :mod:`rrbench.builtins` as lazy commands). A lazy command's module is imported
only when the command runs, so ``rrbench --help`` imports neither the pipeline nor torch. A plugin command that reuses
a taken name is refused.
"""

from __future__ import annotations

import importlib
import os
import traceback
from pathlib import Path

import click

from rrbench import __version__
from rrbench.components.registry import register_commands
from rrbench.util.cache_paths import cache_root, scores_committed
from rrbench.util.errors import RRBenchError, os_error_message, write_crash_log


class LazyGroup(click.Group):
    """A click group whose built-in commands are imported on first use (see the module docstring)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        #: command name -> ("module:attribute", one-line help), filled through the ``register_commands`` hook
        self.lazy: dict[str, tuple[str, str]] = {}

    def add_lazy_command(self, name: str, target: str, short_help: str) -> None:
        """Register a command by ``"module:attribute"``: imported when it runs, listed by ``--help`` without it.

        A name already taken (by a lazy or an ordinary command) is refused, so no plugin can replace ``run``.
        """
        if name in self.lazy or name in self.commands:
            raise click.UsageError(f"command {name!r} already exists")
        self.lazy[name] = (target, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:  # a built-in name always means the built-in command
            module, _, attr = self.lazy[cmd_name][0].partition(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from the table for built-ins (no import) and live for plugin commands."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                short = self.lazy[name][1]
                rows.append((name, short if len(short) <= limit else short[:max(limit - 3, 0)].rstrip() + "..."))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="rrbench")
def cli() -> None:
    """rrbench: benchmark and train rerankers for sentence-level evidence retrieval inside a post."""


def _add_plugin_commands() -> None:
    """Plugin commands arrive through the ``register_commands`` hook (rrbench's own are in the lazy table)."""
    register_commands(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure ends as one line on stderr and an exit code, never a bare traceback.

    2: the user can fix it (bad input, unknown id, a read-only or full location); 1: it broke while running (a plugin
    misbehaved) or an unexpected internal error, whose traceback goes to a log file named in the message;
    130: interrupted. ``RRBENCH_DEBUG=1`` prints the traceback instead.
    """
    try:
        _add_plugin_commands()
        cli.main(args=argv, prog_name="rrbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        kept = " (scores computed so far stay in the score cache)" if scores_committed() else ""
        click.echo(f"rrbench: interrupted; no results were written{kept}", err=True)
        return 130
    except RRBenchError as exc:
        _debug_traceback()
        click.echo(f"rrbench: error: {_one_line(exc)}", err=True)
        return exc.exit_code
    except OSError as exc:
        message = os_error_message(exc)
        if message is None:
            return _internal_error(exc)
        _debug_traceback()
        click.echo(f"rrbench: error: {message}", err=True)
        return 2
    except Exception as exc:
        return _internal_error(exc)
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _debug() -> bool:
    return os.environ.get("RRBENCH_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


def _debug_traceback() -> None:
    if _debug():
        traceback.print_exc()


def _log_dir() -> Path | None:
    """``<cache root>/logs``; None when the cache root itself is unusable (that must not hide the original error)."""

    try:
        return cache_root() / "logs"
    except Exception:
        return None


def _internal_error(exc: Exception) -> int:
    """An error rrbench did not expect: one line, the traceback in a log file (or on screen with RRBENCH_DEBUG=1)."""
    if _debug():
        traceback.print_exc()
        return 1
    log = write_crash_log(traceback.format_exc(), _log_dir())
    where = f"traceback in {log}" if log else "no writable place for a log"
    click.echo(f"rrbench: internal error: {type(exc).__name__}: {_one_line(exc)} ({where}; "
               f"RRBENCH_DEBUG=1 prints it)", err=True)
    return 1

