"""A Ray run from input to checked output: `annotate_ray`."""

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ...data.outputs import DIRECTORY, atomic_path, check_output
from ...data.partials import claim, pipeline_identity
from ...errors import ConfigError, OutputError
from ..annotate import check_min_score, check_positive, load_for_annotation
from .cluster import READ_CPUS, check_cluster_cpus, local_cpus, start_ray
from .compat import actor_pool, blocks_of, read_task_cpus, require_ray
from .inputs import InputFile, count_input_records, input_files, parse_file
from .outputs import OUTPUT_FORMATS, SUMMARY_FILE, count_output_records
from .tagger import BatchTagger

# A test hook, kept off the public signature: a marker file's path makes the first actor that sees a
# batch while the file does not exist create it and exit its process, as a crashed worker would.
_TEST_FAULT_MARKER: Optional[str] = None


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
            ray_address, num_cpus=None if ray_address else local_cpus(actors, cpus_per_actor)
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
        **read_task_cpus(READ_CPUS),
    ).flat_map(parse_file, fn_kwargs={"sources": sources}, num_cpus=READ_CPUS)
    dataset = blocks_of(dataset, batch_size, summary.records_in + summary.blank_lines).map_batches(
        BatchTagger,
        batch_size=batch_size,
        batch_format="numpy",
        **actor_pool(actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor or None,
        fn_constructor_kwargs={
            "model": model,
            "output_dir": str(partial.resolve()),
            "output_format": output_format,
            "engine": engine,
            "min_score": min_score,
            "threads": cpus_per_actor,
            "fault_marker": _TEST_FAULT_MARKER,
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
