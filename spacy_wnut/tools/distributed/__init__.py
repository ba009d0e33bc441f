"""`annotate` on a Ray cluster with Ray Data: the same records, keys and entities as one process, at scale.

The input files (JSONL or Parquet: a file, a directory or a glob of shards)
are read by Ray Data one file per task and parsed into keyed records
(`records.py`, as the single-process reader does); a pool of actors, each of
which loads the pipeline once, tags batches of records (`map_batches` with a
callable class) and writes each batch's output shard itself.

Nothing is lost or doubled:
- a shard's name is derived from the keys of the records in it and written
  under a temporary name, then renamed, so a batch that Ray retries (its actor
  died and was replaced) rewrites the same shard rather than adding one;
- a bad record (invalid JSON, no string `text`, invalid Unicode) and a text that
  makes the pipeline raise become error records (key and reason) in
  `OUTPUT/_errors/`;
- the driver counts the input records itself and checks that
  records in = records written + error records before the run's directory
  (built as `OUTPUT.partial/`) becomes `OUTPUT`;
- every file of an input directory is read, or the run is refused naming the
  file it cannot read (hidden files and names starting with `_`, such as
  `_SUCCESS`, are left out and listed in the summary).

The partial output follows the single-process policy (`data/partials.py`):
an existing `OUTPUT.partial/` is replaced only with `overwrite`, and it is
locked while a run writes it. A Ray run cannot be resumed, so a run that
fails removes its own partial output, unless the counts do not add up: then
it is kept for inspection.
"""

from .cluster import RayExposedWarning, start_ray
from .outputs import ERRORS_DIR, OUTPUT_FORMATS, iter_records
from .run import RaySummary, annotate_ray

__all__ = [
    "ERRORS_DIR",
    "OUTPUT_FORMATS",
    "RayExposedWarning",
    "RaySummary",
    "annotate_ray",
    "iter_records",
    "start_ray",
]
