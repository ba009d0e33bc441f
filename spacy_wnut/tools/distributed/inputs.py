"""The input of a Ray run: its files (one, a directory, a glob), their records counted, and parsed into rows."""

import glob as globbing
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ...data.conll import read_lines
from ...data.records import (
    BadRecord,
    is_blank,
    parse_line,
    record_from_mapping,
    split_lines,
)
from ...errors import InputError

INPUT_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class InputFile:
    """One input file, the key it gives its records (`source`), and its format."""

    path: str
    source: str
    fmt: str


def _hidden(path: Path, root: Path) -> bool:
    """Hidden files and names starting with `_` (`_SUCCESS`, `_errors/`): not data, by convention."""
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def input_files(path: Union[str, Path], ignored: Optional[List[str]] = None) -> List[InputFile]:
    """The files of a JSONL/text/Parquet input: one file, every file under a directory, or a glob.

    Every file of a directory must be one of `INPUT_SUFFIXES` (else the run is
    refused, naming it), except hidden ones and names starting with `_`, which
    are left out and added to `ignored`.
    """
    text = str(path)
    root: Path
    if any(char in text for char in "*?["):
        found = [Path(p) for p in sorted(globbing.glob(text, recursive=True)) if Path(p).is_file()]
        root = Path(os.path.commonpath([str(p.parent) for p in found])) if found else Path(".")
        if not found:
            raise InputError(text, "the pattern matches no file")
    elif Path(text).is_dir():
        root = Path(text)
        every = sorted(p for p in root.rglob("*") if p.is_file())
        found = [p for p in every if not _hidden(p, root)]
        if ignored is not None:
            ignored.extend(str(p.relative_to(root)) for p in every if _hidden(p, root))
        if not found:
            raise InputError(text, f"directory holds no input file ({', '.join(INPUT_SUFFIXES)})")
    elif Path(text).is_file():
        found, root = [Path(text)], Path(text).parent
    else:
        raise InputError(text, "no such file or directory")
    files = []
    for file in found:
        fmt = INPUT_SUFFIXES.get(file.suffix.lower())
        if fmt is None:
            raise InputError(
                str(file),
                f"--ray cannot read this file: it reads {', '.join(INPUT_SUFFIXES)} files (text, JSONL, Parquet); "
                "move it out of the input, or name the files to read with a glob",
            )
        files.append(InputFile(str(file.resolve()), str(file.relative_to(root)), fmt))
    return files


def count_input_records(files: List[InputFile]) -> Tuple[int, int]:
    """(records, blank lines) of the input, counted by the driver: non-blank lines, Parquet rows."""
    records = blank = 0
    for file in files:
        if file.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                records += pq.ParquetFile(file.path).metadata.num_rows
            except (pa.ArrowException, OSError) as err:
                raise InputError(file.path, f"not a readable Parquet file ({type(err).__name__}: {err})") from None
            continue
        for _, raw in read_lines(Path(file.path)):
            if is_blank(raw):
                blank += 1
            else:
                records += 1
    return records, blank


def parse_file(row: Dict[str, Any], sources: Dict[str, Tuple[str, str]]) -> List[Dict[str, Any]]:
    """Ray Data `flat_map`: one input file's bytes -> keyed rows (record, bad record or blank line)."""
    source, fmt = sources[row["path"]]
    rows: List[Dict[str, Any]] = []
    if fmt == "parquet":
        import io

        import pyarrow.parquet as pq

        items = (
            record_from_mapping(source, i, data)
            for i, data in enumerate(pq.read_table(io.BytesIO(row["bytes"])).to_pylist(), start=1)
        )
    else:
        items = (parse_line(source, i, raw, fmt) or i for i, raw in split_lines(row["bytes"]))
    for item in items:
        if isinstance(item, int):
            rows.append(_row("blank", source, item))
        elif isinstance(item, BadRecord):
            rows.append(_row("bad", source, item.line, reason=item.reason, detail=item.detail))
        else:
            rows.append(
                _row("record", source, item.line, text=item.text, meta=json.dumps(item.meta, ensure_ascii=False))
            )
    return rows


def _row(
    kind: str, source: str, line: int, text: str = "", meta: str = "{}", reason: str = "", detail: str = ""
) -> Dict[str, Any]:
    return {
        "kind": kind,
        "source": source,
        "line": line,
        "text": text,
        "meta": meta,
        "reason": reason,
        "detail": detail,
    }
