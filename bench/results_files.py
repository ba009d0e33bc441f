"""Where a benchmark writes its results: OUTPUT.json, OUTPUT.md (and a chart) beside each other."""

import json
from pathlib import Path
from typing import Any


def results_path(stem: Path, extension: str) -> Path:
    """STEM with EXTENSION appended. `Path.with_suffix` would cut the stem at its last dot: the results of
    `--output results/sweep-a0.5` must be `sweep-a0.5.json`, not `sweep-a0.json` (another run's file).

    stem (Path): the results stem, as given on the command line.
    extension (str): e.g. ".json".
    RETURNS (Path): the file's path.
    """
    return stem.parent / f"{stem.name}{extension}"


def write_results(stem: Path, result: Any, table: str) -> None:
    """Print the tables, then write STEM.json (the result) and STEM.md (the tables), creating STEM's folder.

    stem (Path): the results stem, as given on the command line.
    result (Any): what goes into STEM.json (anything `json` cannot write is written as its `str`).
    table (str): the markdown tables.
    """
    print(table)
    stem.parent.mkdir(parents=True, exist_ok=True)
    results_path(stem, ".json").write_text(json.dumps(result, indent=2, default=str))
    results_path(stem, ".md").write_text(table)
    print(f"wrote {stem}.{{json,md}}")
