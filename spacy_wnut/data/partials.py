"""Partial outputs of long runs (`annotate`, `annotate --ray`): one policy for every mode.

A run writes to `OUTPUT.partial` (a file or a directory) and renames it to
`OUTPUT` only when complete. While it writes, it holds an exclusive lock on
the partial (`fcntl.flock`), and `OUTPUT.partial.json` says what made it: the
process, the input, the pipeline and the options that change the output.

- A partial locked by a live run is never touched: a second run says which
  process is writing it.
- A partial left by a run that stopped is kept: continued with `resume` (only
  if the input, pipeline and options are those it was made with, else each
  difference is named), replaced with `overwrite`, and otherwise refused.
"""

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

from ..errors import OutputError
from .outputs import DIRECTORY, FILE, PathLike, atomic_path, check_output, replace, target_of

PARTIAL_SUFFIX = ".partial"
INFO_SUFFIX = ".json"
INFO_FORMAT = "spacy-wnut partial output v1"


def partial_path(output: PathLike) -> Path:
    """Where a run writes before its output is complete: beside the output, or beside what it links
    to (so that the final rename stays on one file system)."""
    output = target_of(output)
    return output.with_name(output.name + PARTIAL_SUFFIX)


def info_path(partial: Path) -> Path:
    """The record of what a partial output was made from."""
    return partial.with_name(partial.name + INFO_SUFFIX)


def _lock(path: Path) -> Optional[int]:
    """An open descriptor of `path` holding an exclusive lock, or None if another process holds one."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _read_info(partial: Path) -> Optional[Dict[str, Any]]:
    try:
        info = json.loads(info_path(partial).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("format") == INFO_FORMAT else None


def _busy(partial: Path) -> OutputError:
    pid = (_read_info(partial) or {}).get("pid")
    who = f"another run (pid {pid})" if pid else "another run"
    return OutputError(f"{partial}: {who} is writing it; wait for it to finish, or stop it and rerun with --resume")


def _empty(path: Path) -> None:
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    else:
        os.truncate(path, 0)


@dataclass
class Partial:
    """A partial output this process holds the lock of."""

    path: Path
    kind: str
    resumed: bool
    _fd: Optional[int] = None

    @property
    def info_path(self) -> Path:
        return info_path(self.path)

    def write_info(self, made_from: Dict[str, Any]) -> None:
        """Record what the partial is made from (and this process's id), for `resume` and for other runs."""
        data = {"format": INFO_FORMAT, "pid": os.getpid(), **made_from}
        with atomic_path(self.info_path) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")

    def check_made_from(self, made_from: Dict[str, Any]) -> None:
        """Refuse to resume a partial made from another input, pipeline or options, naming each difference."""
        recorded = _read_info(self.path)
        if recorded is None:
            raise OutputError(
                f"{self.path}: cannot tell what it was made from ({self.info_path} is missing or unreadable), so "
                "it cannot be resumed safely; pass --overwrite instead of --resume to start again"
            )
        differences = describe_differences(recorded, made_from)
        if differences:
            raise OutputError(
                f"{self.path}: not made by this command, so it cannot be resumed: {'; '.join(differences)}. "
                "Rerun with the same input, pipeline and options, or pass --overwrite instead of --resume"
            )

    def finish(self, output: PathLike) -> None:
        """The partial becomes `output`; its record goes; the lock is released."""
        replace(self.path, output)
        self.info_path.unlink(missing_ok=True)
        self.release()

    def discard(self) -> None:
        """Remove the partial (and its record) and release the lock: for one that holds no work."""
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)
        self.info_path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim(
    output: PathLike, *, kind: str, inputs: Iterable[PathLike] = (), resume: bool = False, overwrite: bool = False
) -> Partial:
    """Take `OUTPUT.partial` for this run, locked: a new one, the one to `resume`, or (with `overwrite`)
    an old one emptied. Refuses a partial another run is writing, and one left by a stopped run
    unless `resume` or `overwrite` says what to do with it.

    kind (str): `FILE` or `DIRECTORY`.
    RETURNS (Partial): the locked partial; `resumed` says whether it holds earlier work.
    """
    if kind not in (FILE, DIRECTORY):
        raise ValueError(f"kind must be {FILE!r} or {DIRECTORY!r}, got {kind!r}")
    partial = partial_path(output)
    check_output(partial, inputs, overwrite=True, kind=kind)
    if partial.exists():
        try:
            fd = _lock(partial)
        except OSError as err:
            raise OutputError(f"{partial}: cannot open it to lock it ({err.strerror or err})") from None
        if fd is None:
            raise _busy(partial)
        if resume:
            return Partial(partial, kind, True, fd)
        if not overwrite:
            os.close(fd)
            raise OutputError(
                f"{partial}: left by an interrupted run; pass --resume to continue it or --overwrite to start again"
            )
        _empty(partial)
        info_path(partial).unlink(missing_ok=True)
        return Partial(partial, kind, False, fd)
    if resume:
        raise OutputError(f"{partial}: no interrupted run to resume (run without --resume)")
    try:
        if kind == DIRECTORY:
            partial.mkdir(parents=True, exist_ok=True)
        else:
            partial.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(partial, os.O_CREAT | os.O_WRONLY, 0o666))
        fd = _lock(partial)
    except OSError as err:
        raise OutputError(
            f"{partial}: cannot create the partial output there ({err.strerror or err}); "
            f"the output's folder {partial.parent} must be writable"
        ) from None
    if fd is None:  # another run created it at the same moment
        raise _busy(partial)
    return Partial(partial, kind, False, fd)


# How each field of the record is named in a refusal.
_FIELDS = {
    "input": "input",
    "pipeline": "pipeline",
    "pipeline_meta": "pipeline meta (name, version)",
    "input_format": "--input-format",
    "output_format": "--output-format",
    "keep_entities": "--keep-entities",
    "engine": "--engine",
    "min_score": "--min-score",
}


def describe_differences(recorded: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    """What differs between the record of a partial and this run, one phrase per field."""
    differences = []
    for key, value in expected.items():
        was = recorded.get(key)
        if was == value:
            continue
        if key in ("pipeline_files", "pipeline_config"):
            differences.append("pipeline files: changed since the partial was made (retrained or replaced)")
        else:
            differences.append(f"{_FIELDS.get(key, key)}: it was made with {_show(was)}, this run has {_show(value)}")
    return differences


def _show(value: Any) -> str:
    return "(not given)" if value is None else str(value)


def pipeline_dir(model: Union[str, Path]) -> Optional[Path]:
    """The directory a pipeline is loaded from: `model` itself, or an installed package's data
    directory; None for neither."""
    path = Path(str(model))
    if path.is_dir():
        return path
    import spacy

    if not spacy.util.is_package(str(model)):
        return None
    path = spacy.util.get_package_path(str(model))
    return next((p for p in path.iterdir() if (p / "config.cfg").is_file()), path)


def pipeline_identity(model: Union[str, Path]) -> Dict[str, Any]:
    """What identifies a pipeline directory or package for `resume`: where it is, its meta's
    name and version, and a fingerprint of its files (names, sizes, modification times)."""
    path = pipeline_dir(model)
    if path is None:
        return {"pipeline": str(model)}
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        status = file.stat()
        digest.update(f"{file.relative_to(path)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode("utf-8"))
    return {
        "pipeline": str(path.resolve()),
        "pipeline_meta": f"{meta.get('lang', '?')}_{meta.get('name', '?')} {meta.get('version', '?')}",
        "pipeline_files": digest.hexdigest()[:16],
    }
