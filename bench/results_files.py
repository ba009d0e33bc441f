"""Where a benchmark writes its results: OUTPUT.json, OUTPUT.md (and a chart) beside each other."""

from pathlib import Path


def results_path(stem: Path, extension: str) -> Path:
    """STEM with EXTENSION appended. `Path.with_suffix` would cut the stem at its last dot: the results of
    `--output results/sweep-a0.5` must be `sweep-a0.5.json`, not `sweep-a0.json` (another run's file).

    stem (Path): the results stem, as given on the command line.
    extension (str): e.g. ".json".
    RETURNS (Path): the file's path.
    """
    return stem.parent / f"{stem.name}{extension}"
