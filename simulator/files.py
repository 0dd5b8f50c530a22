"""Writing output files so that a reader never sees half of one: one helper for every writer."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary)`` on a file beside ``path``, then rename it over ``path``.

    The temporary file is removed if writing fails or is interrupted; the result has the usual
    permissions of a new file (the umask's), not the private ones of a temporary file.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """``write_atomically`` for a text file (UTF-8)."""
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
