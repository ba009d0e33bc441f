"""`export-tasks` and `import-tasks`: the annotation loop (Label Studio, doccano, Prodigy)."""

from pathlib import Path
from typing import Optional

from ._util import (
    Arg,
    BatchSizeOpt,
    ModelArg,
    NoProgressOpt,
    Opt,
    OverwriteOpt,
    app,
    user_errors,
)
from .printers import print_task_export, print_task_import


@app.command("export-tasks")
@user_errors
def export_tasks_cmd(
    model: ModelArg,
    input: Path = Arg(..., help=".txt (one text per line), .jsonl ({'text': ...} + metadata) or .spacy (file or dir)"),
    output: Path = Arg(..., help="tasks file: .json for label-studio (config written beside it), .jsonl otherwise"),
    format: str = Opt(..., "--format", help="label-studio, doccano or prodigy"),
    select: str = Opt("all", "--select", help="uncertain (most uncertain first), random (seeded) or all (in order)"),
    limit: Optional[int] = Opt(None, "--limit", min=1, help="how many tasks to write (default: all)"),
    seed: int = Opt(0, "--seed", help="seed of --select random"),
    input_format: Optional[str] = Opt(None, "--input-format", help="txt, jsonl or spacy (default: from the suffix)"),
    batch_size: BatchSizeOpt = 64,
    skip_bad_lines: bool = Opt(False, "--skip-bad-lines", help="skip (and count) bad input lines instead of stopping"),
    model_version: Optional[str] = Opt(None, "--model-version", help="names the model in the tasks (default: meta)"),
    overwrite: bool = Opt(False, "--overwrite", help="replace existing outputs"),
    no_progress: NoProgressOpt = False,
) -> None:
    """Predictions as pre-annotated tasks for Label Studio, doccano or Prodigy, with scores and uncertainty."""
    from ..tools.annotation.export import export_tasks

    print_task_export(
        export_tasks(
            model,
            input,
            output,
            format=format,
            select=select,
            limit=limit,
            seed=seed,
            input_format=input_format,
            batch_size=batch_size,
            skip_bad_lines=skip_bad_lines,
            model_version=model_version,
            overwrite=overwrite,
            progress=not no_progress,
        )
    )


@app.command("import-tasks")
@user_errors
def import_tasks_cmd(
    export: Path = Arg(..., help="the tool's export: Label Studio JSON, doccano JSONL (or .zip), Prodigy db-out JSONL"),
    output: Path = Arg(..., help=".spacy DocBin to write, for spacy train and train-final --train"),
    format: str = Opt(..., "--format", help="label-studio, doccano or prodigy"),
    model: Optional[str] = Opt(None, "--model", help="pipeline whose tokenizer and labels to use"),
    labels: Optional[str] = Opt(None, "--labels", help="comma-separated labels allowed (default: the model's, or any)"),
    lang: str = Opt("en", "--lang", help="language of the blank tokenizer when no --model is given"),
    strict: bool = Opt(False, "--strict", help="refuse spans off token boundaries, overlaps and repeated keys"),
    use_predictions: bool = Opt(False, "--use-predictions", help="take the model's prediction where none annotated"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Corrected annotations from Label Studio, doccano or Prodigy as a DocBin, every repair counted."""
    from ..tools.annotation.importer import import_tasks

    print_task_import(
        import_tasks(
            export,
            output,
            format=format,
            model=model,
            labels=[label.strip() for label in labels.split(",") if label.strip()] if labels else None,
            lang=lang,
            strict=strict,
            use_predictions=use_predictions,
            overwrite=overwrite,
        )
    )
