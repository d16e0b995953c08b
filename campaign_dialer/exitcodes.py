"""Exit codes a scheduler can act on (sysexits.h where one fits).

They are a public interface: cron wrappers and systemd units branch on them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0                 # everything that could be done is done
    FAILURE = 1            # a bug or an unexpected error: look at the log
    USAGE = 64             # EX_USAGE: bad command line
    DATAERR = 65           # EX_DATAERR: a contacts / DNC / consent file is malformed
    NOINPUT = 66           # EX_NOINPUT: nothing to read yet (report/results before any run)
    UNAVAILABLE = 69       # EX_UNAVAILABLE: the API could not be reached or kept failing
    CANTCREAT = 73         # EX_CANTCREAT: the journal (or an output) cannot be written
    IOERR = 74             # EX_IOERR: a write failed (disk full, I/O error)
    TEMPFAIL = 75          # EX_TEMPFAIL: rows left for a later run, or the campaign is locked
    NOPERM = 77            # EX_NOPERM: the API refused the key (401/403)
    CONFIG = 78            # EX_CONFIG: the campaign file is invalid
    SIGINT = 130           # interrupted by Ctrl-C
    SIGTERM = 143          # stopped by SIGTERM
