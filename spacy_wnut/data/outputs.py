"""Output safety: every file or directory is written under a temporary name beside it and renamed
into place only when complete, and no command may write over one of its own inputs.

A run that fails or is interrupted therefore leaves any earlier result as it
was and never a truncated file under the final name.
"""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Union

from ..errors import OutputError

PathLike = Union[str, Path]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: PathLike, inputs: Iterable[PathLike] = (), *, overwrite: bool = True) -> Path:
    """Refuse an output that is (or holds, or lies inside) one of `inputs`, whose parent is a file,
    or that exists while `overwrite` is off. Nothing is opened or created.
    """
    output = Path(output)
    resolved = output.resolve()
    for given in inputs:
        source = Path(given)
        if _same(output, source) or resolved == source.resolve():
            raise OutputError(f"{output}: the output is the input {source}; choose another output path")
        if source.exists() and source.resolve() in resolved.parents:
            raise OutputError(f"{output}: the output lies inside the input {source}; choose another output path")
        if output.exists() and resolved in source.resolve().parents:
            raise OutputError(f"{output}: the output holds the input {source}; choose another output path")
    for parent in [resolved, *resolved.parents][1:]:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{output}: cannot write there, {parent} is a file, not a directory")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: already exists; pass --overwrite to replace it")
    return output


def temporary_name(path: Path, tag: str = "tmp") -> Path:
    """A hidden name beside `path` for work in progress."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def replace(tmp: Path, path: Path) -> None:
    """Move a finished `tmp` (file or directory) to `path`, replacing what was there."""
    if tmp.is_dir() and path.exists():
        old = temporary_name(path, "old")
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write a file or directory to; it becomes `path`
    only when the block ends without error, else it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{path}: nothing was written")
        replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
