"""Output safety: every file or directory is written under a temporary name beside it and renamed
into place only when complete, and no command may write over one of its own inputs.

A run that fails or is interrupted therefore leaves any earlier result as it
was and never a truncated file under the final name. What is at the output
path is never destroyed by accident:
- an existing output is replaced only with `overwrite`, and a file is never
  replaced by a directory or the reverse (that is refused, saying which is which);
- a stream (`-` for stdout, a name of this process's stdout such as
  `/dev/stdout` or `/dev/fd/1` even where it is redirected to a file, a FIFO, a
  character device) is written to directly, never replaced by a file and
  nothing made beside it;
- a symbolic link is followed: the file or directory it points to is replaced
  (atomically, beside it) and the link stays.
"""

import errno
import os
import shutil
import stat
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from ..errors import OutputError

PathLike = Union[str, Path]
STDOUT = "-"
FILE, DIRECTORY = "file", "directory"
# Errors that mean "the disk (or the file-size limit) is full", not a bug.
FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


# Names of an open file descriptor: what they lead to is written to, never replaced.
DESCRIPTOR_NAMES = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")


def is_stream(path: PathLike) -> bool:
    """Whether writing to `path` writes to a stream: `-` or another name of stdout, a name of an open
    file descriptor (`/dev/fd/N`), or, links followed, a FIFO or a character device."""
    text = str(path)
    if text == STDOUT or text.startswith(DESCRIPTOR_NAMES) or is_stdout(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def is_stdout(path: PathLike) -> bool:
    """Whether `path` is this process's standard output: `-`, or a name for it such as `/dev/stdout`."""
    if str(path) == STDOUT:
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def target_of(path: PathLike) -> Path:
    """What a symbolic link at `path` points to (every link followed); `path` itself otherwise."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _named(output: Path, target: Path) -> str:
    return f"{output} (a link to {target})" if target != output else str(output)


def check_output(
    output: PathLike, inputs: Iterable[PathLike] = (), *, overwrite: bool = False, kind: Optional[str] = None
) -> Path:
    """Refuse an output that is (or holds, or lies inside) one of `inputs`, whose parent is a file,
    that exists while `overwrite` is off, or that is a file where a directory is written (or the
    reverse). A stream, like an empty directory, is never "existing": writing to it destroys nothing.
    Nothing is opened or created.

    output (PathLike): the output path (`-` for stdout).
    inputs (Iterable[PathLike]): the command's inputs.
    overwrite (bool): an existing output may be replaced.
    kind (Optional[str]): `FILE` or `DIRECTORY`, what the command writes there (None: either).
    RETURNS (Path): `output`.
    """
    output = Path(output)
    if is_stream(output):
        if kind == DIRECTORY:
            raise OutputError(f"{output}: is a stream (stdout, a FIFO or a device); this command writes a directory")
        for given in inputs:
            if str(given) != STDOUT and _same(output, Path(given)):
                raise OutputError(f"{output}: the output is the input {given}; choose another output path")
        return output
    target = target_of(output)
    resolved = target.resolve()
    for given in inputs:
        source = Path(given)
        if _same(target, source) or resolved == source.resolve():
            raise OutputError(f"{output}: the output is the input {source}; choose another output path")
        if source.exists() and source.resolve() in resolved.parents:
            raise OutputError(f"{output}: the output lies inside the input {source}; choose another output path")
        if target.exists() and resolved in source.resolve().parents:
            raise OutputError(f"{output}: the output holds the input {source}; choose another output path")
    for parent in [resolved, *resolved.parents][1:]:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{output}: cannot write there, {parent} is a file, not a directory")
    if target.exists():
        name = _named(output, target)
        if not (target.is_dir() or target.is_file()):
            raise OutputError(f"{name}: is neither a regular file nor a directory; it is not replaced")
        if kind == DIRECTORY and not target.is_dir():
            raise OutputError(
                f"{name}: is a file, and this command writes a directory; remove it or choose another path"
            )
        if kind == FILE and target.is_dir():
            raise OutputError(
                f"{name}: is a directory, and this command writes a file; remove it or choose another path"
            )
        if not overwrite and not (target.is_dir() and not any(target.iterdir())):  # an empty folder holds nothing
            raise OutputError(f"{name}: already exists; pass --overwrite to replace it")
    return output


def temporary_name(path: Path, tag: str = "tmp") -> Path:
    """A hidden name beside `path` for work in progress."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def replace(tmp: Path, path: PathLike) -> None:
    """Move a finished `tmp` (file or directory) to `path` (to what it links to, for a link),
    replacing what was there; a file never replaces a directory, nor a directory a file."""
    path = target_of(path)
    if path.exists() and tmp.is_dir() != path.is_dir():
        what = "a directory" if path.is_dir() else "a file"
        raise OutputError(f"{path}: is {what}; it is not replaced by {'a file' if tmp.is_file() else 'a directory'}")
    if tmp.is_dir() and path.exists():
        old = temporary_name(path, "old")
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)


def full_disk_error(err: OSError, path: PathLike, kept: str = "nothing was replaced") -> Optional[OutputError]:
    """An `OutputError` naming `path` for a full disk or a file-size limit, else None."""
    if err.errno not in FULL_ERRNOS:
        return None
    return OutputError(f"{path}: cannot write it: {err.strerror} [Errno {err.errno}]; {kept}")


def _within(name: object, tmp: Path) -> bool:
    return isinstance(name, (str, os.PathLike)) and (Path(name) == tmp or tmp in Path(name).parents)


def open_stream(path: PathLike, mode: str = "w"):
    """A stream output opened for writing (`-` is stdout, which is not closed with the returned file)."""
    binary = "b" in mode
    if is_stdout(path):  # write where stdout is (a redirected file: at its offset, not truncated)
        sys.stdout.flush()
        stdout = sys.stdout.buffer if binary else sys.stdout
        return os.fdopen(os.dup(stdout.fileno()), mode, **({} if binary else {"encoding": "utf-8"}))
    return open(path, mode, **({} if binary else {"encoding": "utf-8"}))


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (beside what it links to) to write a file or directory
    to; it becomes `path` only when the block ends without error, else it is removed. For a stream
    (`-`, a FIFO, a device) the file written is copied to it at the end.

    Errors writing the temporary path are reported for `path` (a full disk as such), never for
    the hidden temporary name.
    """
    path = Path(path)
    if is_stream(path):
        with tempfile.TemporaryDirectory(prefix="spacy-wnut-") as folder:
            tmp = Path(folder) / (path.name if str(path) != STDOUT else "stdout")
            with _errors_named(path, tmp):
                yield tmp
                if tmp.is_dir():
                    raise OutputError(f"{path}: is a stream; a directory cannot be written to it")
                if not tmp.exists():
                    raise OutputError(f"{path}: nothing was written")
                with tmp.open("rb") as source, open_stream(path, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        return
    target = target_of(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{path}: cannot create its directory {target.parent}: {err.strerror or err}") from None
    tmp = temporary_name(target)
    _remove(tmp)
    try:
        with _errors_named(path, tmp):
            yield tmp
            if not tmp.exists():
                raise OutputError(f"{path}: nothing was written")
            replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def _errors_named(path: Path, tmp: Path) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        full = full_disk_error(err, path, f"nothing was replaced ({path} is as it was)")
        if full is not None:
            raise full from None
        if _within(err.filename, tmp) or _within(getattr(err, "filename2", None), tmp):
            raise OutputError(f"{path}: cannot write it: {err.strerror or err}") from None
        raise
