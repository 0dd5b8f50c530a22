"""Files in and out, one place for both: inputs that cannot hang or flood memory, outputs never seen half-written.

Inputs: :func:`open_regular_file` opens only a regular file below a size limit, so a device
(``/dev/zero``), a FIFO or a directory given as an input file is refused at once instead of
blocking or streaming forever.

Outputs: :func:`write_atomically` is the one writer of every output file. A regular file is written
beside its final place and renamed over it; a symbolic link is followed (the file it points to is
replaced, the link stays); a stream or special file (``/dev/stdout``, ``/dev/null``, a FIFO,
``/dev/full``) is written directly, because replacing it by a rename would destroy it. The
``check_output_*`` functions let a command refuse an unusable output path before it starts work.

Names and places: :func:`path_component` admits a name (a family, a variant, a bundle's name) as one
file or folder name only, so a name can never place a file elsewhere; :func:`inside_folder` refuses
a file of a campaign or bundle that lies, once symbolic links are followed, outside it; and
:func:`check_output_not_input` refuses an output that would overwrite one of the command's inputs.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, TextIO

from simulator.errors import LatsimError
from simulator.terminal import CONTROL


class UnusableFile(Exception):
    """Why a file cannot be read as an input; the message omits the path, which the caller names with the file's role."""


class OutputPathError(LatsimError):
    """An output path latsim cannot write: the message names the path and why."""


MAX_NAME_BYTES = 255  # a file name's limit on every common file system (NAME_MAX)
_CONTROL = re.compile(f"[{CONTROL}]")


def path_component(name: str, what: str, error: type[LatsimError] = LatsimError) -> str:
    """``name`` if it can be one file or folder name as it is, else an ``error`` naming ``what`` (an option or field).

    Refused: empty, ``.`` and ``..``, a path separator (``/`` or ``\\``, so no absolute path either),
    a control character, text that is not valid Unicode, and more than ``MAX_NAME_BYTES`` bytes of UTF-8.
    """
    if not isinstance(name, str):
        raise error(f"{what}: must be text, not {type(name).__name__}")
    if name in ("", ".", ".."):
        problem = "is empty" if not name else "names a folder (. or ..), not a file"
    elif "/" in name or "\\" in name:
        problem = "holds a path separator (/ or \\); it becomes a file name, so it must be a plain name"
    elif _CONTROL.search(name):
        problem = "holds a control character"
    else:
        try:
            size = len(name.encode("utf-8"))
        except UnicodeEncodeError:
            problem = "is not valid Unicode text"
        else:
            if size <= MAX_NAME_BYTES:
                return name
            problem = f"is {size} bytes long in UTF-8; a file name holds at most {MAX_NAME_BYTES}"
    shown = repr(name) if len(name) <= 80 else f"{name[:80]!r}…"
    raise error(f"{what} {shown}: {problem}")


def inside_folder(root: Path, path: Path, what: str, error: type[LatsimError] = LatsimError) -> Path:
    """``path`` with symbolic links followed, if it still lies inside ``root`` (also resolved); else an ``error``.

    A campaign or a bundle is read as untrusted data: a link in it to a file or folder elsewhere is
    refused, whatever its text says. ``what`` names the file's role in the message.
    """
    try:
        folder, resolved = Path(root).resolve(), Path(path).resolve()
    except (OSError, RuntimeError) as problem:  # a loop of symbolic links
        raise error(f"{path}: {what} cannot be resolved: {problem}") from None
    if resolved != folder and folder not in resolved.parents:
        raise error(f"{path}: {what} lies outside {root} once symbolic links are followed ({resolved}); "
                          "it must lie inside it")
    return resolved


def check_output_not_input(output: Path, inputs: Iterable[Path], option: str) -> None:
    """Refuse an output file that is (or, through links, resolves to) one of ``inputs``: writing it would destroy that input."""
    for source in inputs:
        if _same_file(Path(output), Path(source)):
            raise OutputPathError(f"{option} {output}: is the input {source}; writing it would overwrite that input, "
                                  "give another file name")


def open_regular_file(path: Path, max_bytes: int) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file of at most ``max_bytes`` bytes.

    The file is opened without blocking and checked through its descriptor, so a FIFO or device
    swapped in after a check cannot slip through. Raises :class:`UnusableFile` saying why not.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UnusableFile("does not exist") from None
    except IsADirectoryError:
        raise UnusableFile("is a folder, not a file") from None
    except OSError as error:
        raise UnusableFile(f"cannot be opened: {error.strerror or error}") from None
    try:
        status = os.fstat(descriptor)
        mode, size = status.st_mode, status.st_size
        if stat.S_ISDIR(mode):
            raise UnusableFile("is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise UnusableFile("is not a regular file (a device, FIFO or socket); give a file")
        if size > max_bytes:
            raise UnusableFile(f"is {_megabytes(size)}; the limit for this kind of file is {_megabytes(max_bytes)}")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (see :func:`open_regular_file`); a file that grows past it is refused."""
    with open_regular_file(path, max_bytes) as handle:
        try:
            content = handle.read(max_bytes + 1)
        except OSError as error:
            raise UnusableFile(f"cannot be read: {error.strerror or error}") from None
    if len(content) > max_bytes:
        raise UnusableFile(f"is larger than the limit for this kind of file, {_megabytes(max_bytes)}")
    return content


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size} bytes"


def _is_special(path: Path) -> bool:
    """True for an existing stream, device, FIFO or socket (anything but a regular file or a folder)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _target(path: Path) -> Path:
    """Where a regular output file really lies: symbolic links followed, so the link itself is kept."""
    return Path(os.path.realpath(path))


def _temporary_beside(target: Path) -> Path:
    """A new, empty temporary file in ``target``'s folder, named after it (the same name every writer and check uses)."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    return Path(temporary)


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write an output file with ``write(file)``; a reader never sees half of a regular file.

    For a regular file (or a new one), ``write`` fills a temporary file beside it, which is then
    renamed over it; the temporary file is removed if writing fails or is interrupted, and the
    result has the usual permissions of a new file (the umask's). A symbolic link is followed:
    the file it points to is replaced and the link stays. A stream or special file is written
    directly (see the module docstring). Raises :class:`OutputPathError` when the file cannot be
    written (a missing folder, no permission, a full disk).
    """
    path = Path(path)
    try:
        if _is_special(path):
            write(path)
            return
        target = _target(path)
        if target.is_dir():
            raise OutputPathError(f"{path}: is a folder; give a file name")
        temporary = _temporary_beside(target)
        umask = os.umask(0)
        os.umask(umask)
        try:
            write(temporary)
            os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise OutputPathError(f"{path}: cannot write: {error.strerror or error}") from None


def write_text_atomically(path: Path, text: str) -> None:
    """``write_atomically`` for a text file (UTF-8)."""
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def standard_stream(path: str) -> TextIO | None:
    """``sys.stdout`` or ``sys.stderr`` when ``path`` is ``-`` or names the file or pipe they write to, else None.

    ``/dev/stdout`` reopened would truncate a file that stdout is redirected to, and its text would
    interleave with what was printed before; writing through the open stream keeps the order.
    """
    if path == "-":
        return sys.stdout
    try:
        named = os.stat(path)
    except OSError:
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            opened = os.fstat(stream.fileno())
        except (OSError, ValueError, AttributeError):  # a replaced stream (tests, notebooks) has no descriptor
            continue
        if (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
            return stream
    return None


def check_output_file(path: Path) -> None:
    """Refuse, before any work, an output file path that :func:`write_atomically` could not write.

    A folder, a missing folder, a path under a regular file, a read-only place (``/proc``) or a
    non-writable special file raise :class:`OutputPathError` naming the path and what to do.
    """
    path = Path(path)
    if _is_special(path):
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{path}: cannot write to it (permission denied)")
        return
    target = _target(path)
    if target.is_dir():
        raise OutputPathError(f"{path}: is a folder; give a file name, e.g. {path / 'summary.json'}")
    folder = target.parent
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputPathError(f"{path}: {existing} is a file, not a folder")
    if existing != folder:
        raise OutputPathError(f"{path}: the folder {folder} does not exist; create it first")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputPathError(f"{path}: the file is read-only")
    try:
        _temporary_beside(target).unlink()
    except OSError as error:
        raise OutputPathError(f"{path}: cannot create files in {folder}: {error.strerror or error}") from None


def check_output_folder(path: Path) -> None:
    """Refuse, before any work, an output folder that cannot be created or written into.

    A regular file, a path under a regular file, or a place where nothing can be created
    (``/proc``, no permission) raise :class:`OutputPathError`. Nothing is created.
    """
    path = Path(path)
    existing = _nearest_existing(_target(path))
    if not existing.is_dir():
        raise OutputPathError(f"{path}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".latsim-check.", dir=existing))
    except OSError as error:
        raise OutputPathError(f"{path}: cannot create anything in {existing}: {error.strerror or error}") from None


def make_output_folder(path: Path) -> Path:
    """Create an output folder (and its parents) after :func:`check_output_folder`; returns it."""
    check_output_folder(path)
    try:
        _target(path).mkdir(parents=True, exist_ok=True)  # a symbolic link to a folder yet to be made is followed
    except OSError as error:
        raise OutputPathError(f"{path}: cannot create the folder: {error.strerror or error}") from None
    return Path(path)


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file: the same place once links are followed, or the same file (a hard link)."""
    if _target(first) == _target(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return False


def _nearest_existing(path: Path) -> Path:
    """``path`` if it exists, else its nearest ancestor that does (``/`` at the latest)."""
    return next(folder for folder in (path, *path.parents) if folder.exists())
