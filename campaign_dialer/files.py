"""The one atomic file writer: results, plans, transcripts and reports are written whole to a
temporary file beside the target, flushed to disk, then moved into place, so a reader (or a
crash) never sees half a file. Low in the import layers so results and report share it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` fills a temporary file in `path`'s folder (made if missing); it is then
    fsynced and renamed over `path`. On any failure the temporary file goes and `path` is
    left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text, written whole (see write_atomic)."""
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
