"""The actor that tags: loads the pipeline once, tags batches of records, writes each batch's shard."""

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ...data.outputs import atomic_path
from ...data.records import (
    BadRecord,
    Record,
    check_length,
    json_line,
    output_row,
)
from ..annotate import SCORES_KEY, load_for_annotation
from .outputs import ERRORS_DIR


class BatchTagger:
    """The Ray Data actor: loads the pipeline once, then tags batches and writes each batch's shard.

    Returns one row of counts per batch. `fault_marker` is a test hook: the
    first actor to see a batch while the marker file does not exist creates
    it and exits its process, as a crashed worker would.
    """

    def __init__(
        self,
        model: str,
        output_dir: str,
        output_format: str,
        engine: Optional[str] = None,
        threads: int = 1,
        fault_marker: Optional[str] = None,
        code: Optional[str] = None,
        min_score: Optional[float] = None,
    ) -> None:
        start = time.perf_counter()
        if code is not None:
            from spacy.util import import_file

            import_file("python_code", code)

        # n_threads sets torch's threads (when a torch pipeline has it loaded) and ONNX Runtime's.
        self.nlp = load_for_annotation(model, engine=engine, n_threads=max(1, threads), min_score=min_score)
        self.output_dir, self.output_format, self.fault_marker = Path(output_dir), output_format, fault_marker
        self.load_seconds = time.perf_counter() - start
        self.reported_load = False

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[Any]]:
        self._maybe_fail()
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        records = [
            Record(r["source"], int(r["line"]), r["text"], json.loads(r["meta"])) for r in rows if r["kind"] == "record"
        ]
        errors = [
            BadRecord(r["source"], int(r["line"]), r["reason"], r["detail"]).to_dict()
            for r in rows
            if r["kind"] == "bad"
        ]
        tagged, failed = self._tag(records)
        errors += failed
        shard = hashlib.sha1("\n".join(f"{r['source']}:{r['line']}" for r in rows).encode("utf-8")).hexdigest()[:20]
        if tagged:
            self._write(self.output_dir / f"part-{shard}.{self.output_format}", tagged, self.output_format)
        if errors:
            self._write(self.output_dir / ERRORS_DIR / f"part-{shard}.jsonl", errors, "jsonl")
        entities = Counter(e["label"] for row in tagged for e in row["entities"])
        load, self.reported_load = (0.0 if self.reported_load else self.load_seconds), True
        return {
            "rows": [len(rows)],
            "written": [len(tagged)],
            "errors": [len(errors)],
            "blank": [sum(r["kind"] == "blank" for r in rows)],
            "words": [sum(len(r["text"].split()) for r in tagged)],
            "entities": [json.dumps(entities)],
            "error_reasons": [json.dumps(Counter(e["reason"] for e in errors))],
            "load_seconds": [load],
        }

    def _tag(self, records: List[Record]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        """Output rows of the records; a record that is too long or makes the pipeline raise becomes an error record."""
        too_long = [bad for bad in (check_length(r, self.nlp.max_length) for r in records) if bad is not None]
        if too_long:
            skip = {bad.key for bad in too_long}
            records = [r for r in records if r.key not in skip]
        tagged, failed = self._tag_all(records)
        return tagged, [bad.to_dict() for bad in too_long] + failed

    def _tag_all(self, records: List[Record]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        try:
            docs = list(self.nlp.pipe([r.text for r in records], batch_size=max(1, len(records))))
            return [output_row(r, doc, SCORES_KEY) for r, doc in zip(records, docs)], []
        except Exception:
            pass
        tagged, failed = [], []
        for record in records:  # find the records that fail, one at a time
            try:
                tagged.append(output_row(record, self.nlp(record.text), SCORES_KEY))
            except Exception as err:
                failed.append(
                    BadRecord(record.source, record.line, "pipeline error", f"{type(err).__name__}: {err}").to_dict()
                )
        return tagged, failed

    @staticmethod
    def _write(path: Path, rows: List[Dict[str, Any]], fmt: str) -> None:
        with atomic_path(path) as tmp:
            if fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.Table.from_pylist(rows), str(tmp))
            else:
                tmp.write_text("".join(json_line(row) for row in rows), encoding="utf-8")

    def _maybe_fail(self) -> None:
        if self.fault_marker is None:
            return
        try:
            os.close(os.open(self.fault_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)
