"""`export-tasks`: a pipeline's predictions on text, JSONL or DocBin input, as one tool's pre-annotated tasks.

Input is read by `annotate`'s readers, so `.txt`, `.jsonl` and `.spacy` work
and a bad line behaves as in `annotate`: it stops the run with its file and
line (nothing is written), or with `skip_bad_lines` is skipped and counted.
Every text is predicted and given its uncertainty (`selection.py`); the
selection keeps `limit` of them (the most uncertain, a seeded random sample,
or the first), and those are written in that order, atomically, as the tool's
import format (and, for Label Studio, the labeling config beside them).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

from spacy.language import Language
from tqdm import tqdm

from ...data.outputs import atomic_path, check_output
from ...errors import ConfigError, InputError
from ...pipeline.component import find_wnut_pipe
from ..annotate import (
    INPUT_FORMATS,
    AnnotateSummary,
    _records_to_tag,
    check_positive,
    detect_format,
    load_for_annotation,
    read_items,
)
from . import label_studio
from .importer import FORMATS, check_format
from .predict import Prediction, predict_records
from .selection import Selector, check_selection


@dataclass
class ExportSummary(AnnotateSummary):
    """`annotate`'s counts of what was read, plus what was selected and written."""

    format: str = ""
    selection: str = "all"
    selected: int = 0
    uncertainty_sum: float = 0.0
    selected_uncertainties: List[float] = field(default_factory=list)


def model_version_of(nlp: Language) -> str:
    """`lang_name-version` from the pipeline's meta, as a tool's `model_version`."""
    meta = nlp.meta
    return f"{meta.get('lang', nlp.lang)}_{meta.get('name', 'pipeline')}-{meta.get('version', '0.0.0')}"


# The file each tool imports: Label Studio one JSON array, doccano and Prodigy JSON lines.
TASK_SUFFIXES = {"label-studio": ".json", "doccano": ".jsonl", "prodigy": ".jsonl"}


def check_task_suffix(output_path: Path, format: str) -> None:
    """Refuse a `.json` output for JSON lines or a `.jsonl` one for a JSON array (other names are kept)."""
    suffix, wanted = output_path.suffix.lower(), TASK_SUFFIXES[format]
    if suffix in (".json", ".jsonl") and suffix != wanted:
        what = "one JSON array" if wanted == ".json" else "JSON lines"
        raise ConfigError(f"{output_path}: --format {format} writes {what}; name the output {wanted}")


def export_tasks(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    format: str,
    select: str = "all",
    limit: Optional[int] = None,
    seed: int = 0,
    input_format: Optional[str] = None,
    batch_size: int = 64,
    skip_bad_lines: bool = False,
    model_version: Optional[str] = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ExportSummary:
    """Predict every input record and write the selected ones as `format`'s tasks.

    model (Union[str, Path, Language]): a pipeline, or its directory or package name.
    input_path (Union[str, Path]): `.txt`, `.jsonl` or `.spacy` (a file or a directory of them).
    output_path (Union[str, Path]): the tasks file (`.json` for Label Studio, `.jsonl` for the others).
    format (str): "label-studio", "doccano" or "prodigy".
    select (str): "uncertain" (most uncertain first), "random" (seeded) or "all" (input order).
    limit (Optional[int]): how many tasks to write; None for all.
    seed (int): the random selection's seed.
    skip_bad_lines (bool): skip (and count) bad records instead of stopping at the first.
    model_version (Optional[str]): names the model in the tasks (default: from its meta).
    overwrite (bool): replace existing outputs.
    RETURNS (ExportSummary): what was read, selected and written.
    """
    check_format(format)
    check_selection(select, limit)
    check_positive("batch_size", batch_size)
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.exists():
        raise InputError(str(input_path), "no such file or directory")
    in_fmt = "spacy" if input_path.is_dir() else detect_format(input_path, INPUT_FORMATS, input_format, "input")
    tool = FORMATS[format]
    check_task_suffix(output_path, format)
    outputs = [output_path] + ([label_studio.config_path(output_path)] if tool is label_studio else [])
    for path in outputs:
        check_output(path, [input_path], overwrite=overwrite)
    nlp = model if isinstance(model, Language) else load_for_annotation(model)
    _, pipe = find_wnut_pipe(nlp)
    version = model_version or model_version_of(nlp)
    summary = ExportSummary(format=format, selection=select)
    fatal: list = []
    items = read_items(input_path, in_fmt, nlp, summary, keep_entities=False)
    stream = _records_to_tag(items, summary, skip_bad_lines, fatal)
    selector: Selector[Prediction] = Selector(select, limit, seed)
    predictions = predict_records(nlp, stream, batch_size=batch_size)
    for prediction in tqdm(predictions, unit="doc", desc="export-tasks", disable=not progress, smoothing=0.1):
        summary.docs_out += 1
        summary.uncertainty_sum += prediction.uncertainty
        selector.add(prediction, prediction.uncertainty)
    if fatal:
        bad = fatal[0]
        raise InputError(
            f"{input_path}:{bad.line}",
            f"{bad.reason}: {bad.detail} (nothing was written; fix the line, or pass --skip-bad-lines)",
        )
    chosen = selector.selected()
    summary.selected = len(chosen)
    summary.selected_uncertainties = [p.uncertainty for p in chosen]
    for prediction in chosen:
        summary.entities.update(e["label"] for e in prediction.entities)
    with atomic_path(output_path) as tmp:
        tool.write((tool.task(p, version) for p in chosen), tmp)
    summary.outputs.append(str(output_path))
    if tool is label_studio:
        config = label_studio.config_path(output_path)
        with atomic_path(config) as tmp:
            tmp.write_text(label_studio.labeling_config(pipe.labels), encoding="utf-8")
        summary.outputs.append(str(config))
    return summary
