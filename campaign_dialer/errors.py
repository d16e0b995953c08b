"""Every error the dialer raises on purpose, rooted in one class that carries its exit code.

The CLI catches `DialerError` alone: a subclass says which exit code (see `exitcodes`) a
scheduler gets, and its message is the one line the operator reads. Modules define their own
subclasses here or next to their code, but always under this root.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from campaign_dialer.exitcodes import ExitCode


class DialerError(Exception):
    """An error the CLI turns into a clean message and an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE


class NotRunYet(DialerError):
    """Asked for what only a run produces (a report, results) before any run."""

    exit_code = ExitCode.NOINPUT


class NotApplicable(DialerError):
    """The command does not apply to the campaign as it stands (e.g. resume after cancel)."""

    exit_code = ExitCode.USAGE


class RunStopped(DialerError):
    """A run that ended on an error (its results and report are written): the CLI says why
    in one line, as for any other error, and exits with its code."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        self.exit_code = exit_code
        super().__init__(message)


# A run ending with one of these did what it could and says so in its summary; the others
# are errors (one line on stderr).
RUN_NOT_ERRORS = frozenset({ExitCode.OK, ExitCode.TEMPFAIL, ExitCode.SIGINT, ExitCode.SIGTERM})


class InputError(DialerError):
    """An input file (contacts, DNC list, consent ledger, rules table) cannot be read exactly.

    The message names the file, and the row and column when there is one.
    """

    exit_code = ExitCode.DATAERR

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.row = row
        self.column = column
        self.problem = problem
        where = str(self.path)
        if row is not None:
            where += f": row {row}"
        if column is not None:
            where += f", column {column!r}" if row is not None else f": column {column!r}"
        super().__init__(f"{where}: {problem}")


class ConfigError(DialerError):
    """The campaign file is wrong; the message names the file and the key."""

    exit_code = ExitCode.CONFIG

    def __init__(
        self, path: Path | str, key: str, problem: str,
        more: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.problem = problem
        self.problems = [(key, problem), *more]
        if not more:
            where = f"{self.path}: {key}: " if key else f"{self.path}: "
            super().__init__(where + problem)
            return
        lines = [f"  {k}: {p}" if k else f"  {p}" for k, p in self.problems]
        super().__init__(f"{self.path}: {len(self.problems)} problems:\n" + "\n".join(lines))

    @classmethod
    def of(cls, path: Path | str, problems: Sequence[tuple[str, str]]) -> ConfigError:
        """Every problem at once, so a file is fixed in one round trip."""
        return cls(path, problems[0][0], problems[0][1], problems[1:])


class CampaignLocked(DialerError):
    """Another run of this campaign holds its lock: try again when it has finished."""

    exit_code = ExitCode.TEMPFAIL


class DemoFolderError(DialerError):
    """`demo --out` names a folder that holds something other than a previous demo."""

    exit_code = ExitCode.USAGE
