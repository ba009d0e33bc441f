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

import glob as globbing
import hashlib
import json
import math
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from ..data.conll import read_lines
from ..data.outputs import DIRECTORY, atomic_path, check_output
from ..data.partials import claim, pipeline_identity
from ..data.records import (
    BadRecord,
    Record,
    check_length,
    is_blank,
    json_line,
    output_row,
    parse_line,
    record_from_mapping,
    split_lines,
)
from ..errors import ConfigError, InputError, MissingExtra, OutputError
from .annotate import SCORES_KEY, check_min_score, check_positive, load_for_annotation

RAY_HINT = "pip install 'spacy-wnut[ray]'"
INPUT_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".parquet": "parquet", ".pq": "parquet"}
OUTPUT_FORMATS = ("jsonl", "parquet")
# CPUs reserved by each task that reads and parses an input file.
READ_CPUS = 0.25
ERRORS_DIR, SUMMARY_FILE = "_errors", "_summary.json"


@dataclass
class InputFile:
    """One input file, the key it gives its records (`source`), and its format."""

    path: str
    source: str
    fmt: str


@dataclass
class RaySummary:
    """What a Ray run read, wrote and counted, and how long its parts took."""

    records_in: int = 0
    records_out: int = 0
    error_records: int = 0
    blank_lines: int = 0
    errors: Counter = field(default_factory=Counter)
    entities: Counter = field(default_factory=Counter)
    words: int = 0
    batches: int = 0
    actors: int = 0
    startup_seconds: float = 0.0
    model_load_seconds: float = 0.0
    run_seconds: float = 0.0
    input_files: int = 0
    ignored_files: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.records_in == self.records_out + self.error_records

    def to_dict(self) -> Dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data.update(errors=dict(self.errors), entities=dict(self.entities), balanced=self.balanced)
        return data


def require_ray() -> None:
    """Raise a clear error naming the extra to install when Ray Data is missing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise MissingExtra("--ray (Ray Data)", ["ray[data]"], "ray")


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


def start_ray(address: Optional[str], num_cpus: Optional[int] = None) -> float:
    """Join the cluster at `address` (`auto`, `ray://host:port`), or start a local one without dashboard;
    returns the seconds it took. A local cluster that listens beyond loopback is warned of, with where
    (Ray 2.60 rewrites 127.0.0.1 to the machine's address and listens on every interface)."""
    import ray

    from .listening import listeners_of

    start = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        return time.perf_counter() - start
    before = set(listeners_of(os.getpid()))
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level="ERROR",
        log_to_driver=False,
    )
    exposed = [found for found in listeners_of(os.getpid()) if found not in before and not found.loopback_only]
    if exposed:
        warnings.warn(
            f"the local Ray cluster listens on {len(exposed)} sockets beyond loopback, e.g. {exposed[0]}: Ray "
            f"{ray.__version__} has no setting to keep them on 127.0.0.1. On a machine reachable from an untrusted "
            "network, annotate without --ray, firewall these ports, or use --ray-address with a cluster in a "
            "trusted network",
            RayExposedWarning,
            stacklevel=2,
        )
    return time.perf_counter() - start


class RayExposedWarning(UserWarning):
    """A local Ray cluster that other machines can reach."""


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


def _actor_pool(actors: int) -> Dict[str, Any]:
    """`map_batches` arguments for a pool of `actors` actors, as this Ray spells them."""
    import ray
    from ray.data import ActorPoolStrategy

    version = tuple(int(part) for part in ray.__version__.split(".")[:2] if part.isdigit())
    # Ray 2.51 deprecated `concurrency` for callable classes in favour of `compute`;
    # the releases before it (from 2.9, the oldest supported) take `concurrency`.
    if version >= (2, 51):
        return {"compute": ActorPoolStrategy(size=actors)}
    return {"concurrency": actors}


def _read_cpus() -> Dict[str, Any]:
    """`read_binary_files` arguments reserving `READ_CPUS` per read task, as this Ray spells them."""
    import inspect

    import ray.data

    # Newer Ray takes `num_cpus` and deprecates `ray_remote_args`; older Ray has only the latter.
    if "num_cpus" in inspect.signature(ray.data.read_binary_files).parameters:
        return {"num_cpus": READ_CPUS}
    return {"ray_remote_args": {"num_cpus": READ_CPUS}}


def _blocks_of(dataset: "ray.data.Dataset", rows: int, total_rows: int) -> "ray.data.Dataset":  # noqa: F821
    """The dataset cut into blocks of about `rows` rows.

    Ray Data reads a file as one block and gives a block to one actor, so
    without this a single input file would keep every actor but one idle.
    """
    import inspect

    if "target_num_rows_per_block" in inspect.signature(dataset.repartition).parameters:
        return dataset.repartition(target_num_rows_per_block=rows)  # streaming
    return dataset.repartition(max(1, math.ceil(total_rows / rows)))  # older Ray: a barrier, still correct


def annotate_ray(
    model: Union[str, Path],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    ray_address: Optional[str] = None,
    actors: int = 1,
    cpus_per_actor: int = 1,
    gpus_per_actor: float = 0.0,
    batch_size: int = 64,
    engine: Optional[str] = None,
    min_score: Optional[float] = None,
    output_format: str = "jsonl",
    overwrite: bool = False,
    progress: bool = False,
    code: Optional[Union[str, Path]] = None,
    fault_marker: Optional[str] = None,
) -> RaySummary:
    """Tag every record of the input on Ray and write a directory of output shards (see the module doc).

    model (Union[str, Path]): a pipeline directory every worker can read (shared
        storage) or an installed pipeline package name.
    input_path (Union[str, Path]): a text, JSONL or Parquet file, a directory of them, or a glob.
    output_path (Union[str, Path]): the output directory (shards, `_errors/`, `_summary.json`).
    ray_address (Optional[str]): a cluster to join; None starts a local one on 127.0.0.1.
    actors (int): actors in the pool, each with the pipeline loaded once.
    cpus_per_actor (int): CPUs reserved per actor, and its threads.
    gpus_per_actor (float): GPUs per actor.
    batch_size (int): records per batch (one output shard).
    engine (Optional[str]): the component's inference engine, None for the pipeline's own.
    min_score (Optional[float]): drop entities whose probability is below it; None keeps the pipeline's.
    output_format (str): "jsonl" or "parquet".
    overwrite (bool): replace an existing output (and a partial one left by a stopped run).
    code (Optional[Union[str, Path]]): a Python file every actor imports first (registered functions).
    fault_marker (Optional[str]): test hook, see `BatchTagger`.
    RETURNS (RaySummary): counts (checked: in = written + errors) and timings.
    """
    for name, value in (("actors", actors), ("cpus_per_actor", cpus_per_actor), ("batch_size", batch_size)):
        check_positive(name, value)
    if gpus_per_actor < 0:
        raise ConfigError(f"gpus_per_actor must be 0 or more, got {gpus_per_actor}")
    check_min_score(min_score)
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(f"output format {output_format!r} is not supported with --ray; use one of {OUTPUT_FORMATS}")
    require_ray()
    summary = RaySummary(actors=actors)
    files = input_files(input_path, summary.ignored_files)
    summary.input_files = len(files)
    output = Path(output_path)
    inputs = [f.path for f in files] + ([input_path] if Path(str(input_path)).exists() else [])
    check_output(output, inputs, overwrite=overwrite, kind=DIRECTORY)
    model = _checked_model(model, engine, min_score, joined=bool(ray_address))
    summary.records_in, summary.blank_lines = count_input_records(files)
    partial = claim(output, kind=DIRECTORY, inputs=inputs, overwrite=overwrite)
    keep = False
    try:
        partial.write_info(
            {
                "input": str(input_path),
                **pipeline_identity(model),
                "output_format": output_format,
                "engine": engine,
                "min_score": min_score,
            }
        )
        summary.startup_seconds = start_ray(
            ray_address, num_cpus=None if ray_address else _local_cpus(actors, cpus_per_actor)
        )
        check_cluster_cpus(actors, cpus_per_actor, joined=bool(ray_address))
        _run_on_ray(
            summary,
            files,
            partial.path,
            model,
            batch_size,
            actors,
            cpus_per_actor,
            gpus_per_actor,
            engine,
            min_score,
            output_format,
            progress,
            code,
            fault_marker,
        )
        summary.records_out, summary.error_records = count_output_records(partial.path, output_format)
        if not summary.balanced:
            keep = True
            raise OutputError(
                f"{partial.path}: records in ({summary.records_in}) != records written ({summary.records_out}) + "
                f"error records ({summary.error_records}); the output is left there for inspection"
            )
        with atomic_path(partial.path / SUMMARY_FILE) as tmp:
            tmp.write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
        partial.finish(output)
    except BaseException:
        if not keep:  # a Ray run cannot be resumed: what it half wrote is of no use
            partial.discard()
        raise
    finally:
        partial.release()
    summary.outputs.append(str(output))
    return summary


def _checked_model(model: Union[str, Path], engine: Optional[str], min_score: Optional[float], joined: bool) -> str:
    """The model as the actors should load it, loaded here first to fail early with a clear message.

    On a local cluster the actors share this machine, so a model this process
    cannot load is refused before Ray starts. A package that only the workers of
    a joined cluster have (installed through Ray's runtime_env) is left to them.
    """
    import spacy

    if Path(str(model)).exists():
        model = str(Path(str(model)).resolve())
    if Path(str(model)).exists() or spacy.util.is_package(str(model)) or not joined:
        load_for_annotation(model, engine=engine, min_score=min_score)
    return str(model)


def _run_on_ray(
    summary: RaySummary,
    files: List[InputFile],
    partial: Path,
    model: str,
    batch_size: int,
    actors: int,
    cpus_per_actor: int,
    gpus_per_actor: float,
    engine: Optional[str],
    min_score: Optional[float],
    output_format: str,
    progress: bool,
    code: Optional[Union[str, Path]],
    fault_marker: Optional[str],
) -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    start = time.perf_counter()
    sources = {f.path: (f.source, f.fmt) for f in files}
    dataset = ray.data.read_binary_files(
        [f.path for f in files],
        include_paths=True,
        override_num_blocks=len(files),
        **_read_cpus(),
    ).flat_map(parse_file, fn_kwargs={"sources": sources}, num_cpus=READ_CPUS)
    dataset = _blocks_of(dataset, batch_size, summary.records_in + summary.blank_lines).map_batches(
        BatchTagger,
        batch_size=batch_size,
        batch_format="numpy",
        **_actor_pool(actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor or None,
        fn_constructor_kwargs={
            "model": model,
            "output_dir": str(partial.resolve()),
            "output_format": output_format,
            "engine": engine,
            "min_score": min_score,
            "threads": cpus_per_actor,
            "fault_marker": fault_marker,
            "code": str(Path(code).resolve()) if code is not None else None,
        },
    )
    for stats in dataset.iter_rows():
        summary.batches += 1
        summary.words += int(stats["words"])
        summary.entities.update(json.loads(stats["entities"]))
        summary.errors.update(json.loads(stats["error_reasons"]))
        summary.model_load_seconds = max(summary.model_load_seconds, float(stats["load_seconds"]))
    summary.run_seconds = time.perf_counter() - start


def _local_cpus(actors: int, cpus_per_actor: int) -> int:
    """Logical CPUs for a local cluster: the machine's, and at least enough for the actors and the
    reading tasks (`check_cluster_cpus`)."""
    return max(os.cpu_count() or 1, math.ceil(actors * cpus_per_actor + READ_CPUS))


def check_cluster_cpus(actors: int, cpus_per_actor: int, joined: bool) -> None:
    """Refuse (local cluster) or warn about (joined cluster) a pool that leaves no CPU for reading.

    The actors hold their CPUs for the whole run; if the cluster has no
    `READ_CPUS` left beside them, the tasks that read the input never start
    and the run waits for ever. A joined cluster may still grow (autoscaling),
    so there it is a warning.
    """
    import ray

    total = float(ray.cluster_resources().get("CPU", 0.0))
    need = actors * cpus_per_actor + READ_CPUS
    if total >= need:
        return
    message = (
        f"the Ray cluster has {total:g} CPU(s), but {actors} actor(s) x {cpus_per_actor} CPU(s) plus {READ_CPUS:g} "
        f"for reading the input need {need:g}: use fewer --actors or --cpus-per-actor"
    )
    if joined:
        warnings.warn(message + " (the run waits unless the cluster adds nodes)", stacklevel=3)
        return
    raise ConfigError(message + "; this process's local Ray was started earlier with fewer CPUs (ray.shutdown() it)")


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
