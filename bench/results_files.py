"""Where a benchmark writes its results: OUTPUT.json, OUTPUT.md (and a chart) beside each other."""

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from spacy_wnut.data.outputs import atomic_path


def results_path(stem: Path, extension: str) -> Path:
    """STEM with EXTENSION appended. `Path.with_suffix` would cut the stem at its last dot: the results of
    `--output results/sweep-a0.5` must be `sweep-a0.5.json`, not `sweep-a0.json` (another run's file).

    stem (Path): the results stem, as given on the command line.
    extension (str): e.g. ".json".
    RETURNS (Path): the file's path.
    """
    return stem.parent / f"{stem.name}{extension}"


def write_results(stem: Path, result: Any, table: str, chart: Optional[Callable[[Path], None]] = None) -> None:
    """Print the tables, then write STEM.json (the result), STEM.md (the tables) and, given `chart`, STEM.png,
    creating STEM's folder. Each file is written beside its name and renamed once whole, so an interrupted
    run never leaves a truncated results file (nor replaces the last run's with one).

    stem (Path): the results stem, as given on the command line.
    result (Any): what goes into STEM.json (anything `json` cannot write is written as its `str`).
    table (str): the markdown tables.
    chart (Optional[Callable[[Path], None]]): draws the chart, as PNG, to the path it is given.
    """
    print(table)
    files: Dict[str, Callable[[Path], Any]] = {
        ".json": lambda path: path.write_text(json.dumps(result, indent=2, default=str)),
        ".md": lambda path: path.write_text(table),
    }
    if chart is not None:
        files[".png"] = chart
    for extension, write in files.items():
        with atomic_path(results_path(stem, extension)) as tmp:
            write(tmp)
    print(f"wrote {stem}.{{{','.join(extension[1:] for extension in files)}}}")
