"""The output of a Ray run: shards of records and of error records, counted and read back."""

import json
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple, Union

OUTPUT_FORMATS = ("jsonl", "parquet")
ERRORS_DIR, SUMMARY_FILE = "_errors", "_summary.json"


def count_output_records(output: Path, fmt: str) -> Tuple[int, int]:
    """(records, error records) as written: lines of the JSONL shards, rows of the Parquet ones."""
    records = 0
    for shard in output.glob(f"part-*.{fmt}"):
        if fmt == "parquet":
            import pyarrow.parquet as pq

            records += pq.ParquetFile(shard).metadata.num_rows
        else:
            records += sum(1 for _ in shard.open("rb"))
    errors = sum(sum(1 for _ in shard.open("rb")) for shard in (output / ERRORS_DIR).glob("part-*.jsonl"))
    return records, errors


def iter_records(output: Union[str, Path]) -> Iterator[Dict[str, Any]]:
    """The records of a Ray run's output directory (JSONL or Parquet shards), in no particular order."""
    output = Path(output)
    for shard in sorted(output.glob("part-*")):
        if shard.suffix == ".parquet":
            import pyarrow.parquet as pq

            yield from pq.read_table(shard).to_pylist()
        else:
            for line in shard.open(encoding="utf-8"):
                yield json.loads(line)
