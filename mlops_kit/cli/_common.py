"""What every command shares: adding subcommands with an example, the actor option, the project,
plain tables, what an environment serves, and running a handler with one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlops_kit.errors import ToolkitError

if TYPE_CHECKING:
    from mlops_kit.project import Project

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[..., argparse.ArgumentParser]

PROG = "mlops-kit"
BROKEN_PIPE_EXIT = 141
"""What a shell reports for a process killed by SIGPIPE (128 + 13): ``status | head -1``."""
INTERRUPTED_EXIT = 130
ACTOR_HELP = "who acts, as recorded in commits and requests (default: $MLOPS_KIT_ACTOR or login)"


def subcommands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> AddCommand:
    """A function adding one subcommand: ``add(name, help, example, handler)``.

    The example (a command line, or several) ends the subcommand's ``--help``.
    """

    def add(name: str, help: str, example: str, handler: Handler) -> argparse.ArgumentParser:
        lines = "\n".join(f"  {line}" for line in example.strip().splitlines())
        parser = sub.add_parser(
            name,
            help=help,
            description=help[:1].upper() + help[1:] + ".",
            epilog=f"example:\n{lines}",
            parents=parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=handler)
        return parser

    return add


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option: still accepted, hidden from help, warned about."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, replacement: str,
                 **kwargs: Any) -> None:  # fmt: skip
        kwargs["help"] = argparse.SUPPRESS
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"warning: {option_string} is deprecated; use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_actor(parser: argparse.ArgumentParser, help: str = ACTOR_HELP, *,
              required: bool = False) -> None:  # fmt: skip
    """``--as NAME`` (dest ``actor``), the one spelling; ``--actor`` is a hidden old alias.

    Required, one of the two must be given (a group: argparse would not count the alias).
    """
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--as", dest="actor", metavar="NAME", help=help)
    group.add_argument("--actor", dest="actor", metavar="NAME", action=DeprecatedAlias,
                       replacement="--as")  # fmt: skip


def project(args: argparse.Namespace) -> Project:
    """The project the command's ``--config`` names (or discovery finds)."""
    from mlops_kit.project import Project

    return Project.load(args.config)


def print_table(rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of equal keys as left-aligned columns under a header line."""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


def serving_now(project: Project, environment: str) -> str:
    """One line: which version of the project's model ``environment`` serves, and how it is."""
    from mlops_kit import targets

    with targets.for_environment(project.settings, environment) as target:
        status = target.status(project.model_name)
    if status is None:
        return f"{environment} serves no version of {project.model_name}"
    state = "ready" if status.ready else f"NOT READY: {status.detail}"
    where = f" at {status.endpoint}" if status.endpoint else ""
    return f"{environment} serves {status.model_name} v{status.version} ({state}){where}"


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command: toolkit errors as one line on stderr, quiet on Ctrl-C and broken pipes."""
    try:
        code = handler(args)
        # Output to a pipe is buffered: flush here, where a closed reader can still be handled.
        sys.stdout.flush()
        return code
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        # The reader went away (``| head -1``): what it wanted, it has. Point stdout at
        # /dev/null so the interpreter's final flush does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_EXIT
