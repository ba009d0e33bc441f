"""`annotate`: tag files in one process or on Ray (`--ray`); the options of each mode are a table below."""

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from ._util import (
    Arg,
    BatchSizeOpt,
    CodeOpt,
    EngineOpt,
    MinScoreOpt,
    ModelArg,
    NoProgressOpt,
    Opt,
    OverwriteOpt,
    app,
    console,
    given,
    import_code,
    user_errors,
)
from .printers import print_annotation, print_ray_summary

# One command, two modes (docs/cli.md says why): the options only one mode takes, one table per mode
# (parameter -> the option as spelled, and why --ray refuses it). Given in the other mode, they are
# refused by name; `--help` lists them under a heading per mode.
RAY_ONLY = {
    "ray_address": "--ray-address",
    "actors": "--actors",
    "cpus_per_actor": "--cpus-per-actor",
    "gpus_per_actor": "--gpus-per-actor",
}
ONE_PROCESS_ONLY = {
    "input_format": ("--input-format", "the format is each file's suffix"),
    "n_process": ("--n-process", "use --actors"),
    "skip_bad_lines": ("--skip-bad-lines", "bad records always go to OUTPUT/_errors/"),
    "keep_entities": ("--keep-entities", "it reads no .spacy input"),
    "resume": ("--resume", "a Ray run cannot be resumed (rerun with --overwrite)"),
}
ONE_PROCESS, RAY = "One process (the default)", "Ray Data (--ray)"


def check_mode_options(ctx: typer.Context, ray: bool) -> None:
    """Refuse options that do nothing in this mode, naming them (and why)."""
    if ray:
        refused = given(ctx, {name: flag for name, (flag, _) in ONE_PROCESS_ONLY.items()})
        if refused:
            why = {flag: reason for flag, reason in ONE_PROCESS_ONLY.values()}
            reasons = "; ".join(f"{flag}: {why[flag]}" for flag in refused)
            raise ConfigError(f"--ray does not take {', '.join(refused)} ({reasons})")
    else:
        refused = given(ctx, RAY_ONLY)
        if refused:
            raise ConfigError(f"{', '.join(refused)} only apply with --ray")


@app.command("annotate")
@user_errors
def annotate_cmd(
    ctx: typer.Context,
    model: ModelArg,
    input: str = Arg(
        ...,
        help=".txt (one doc per line), .jsonl ({'text': ...} + metadata) or .spacy (file or "
        "directory); with --ray: text, JSONL or Parquet, a file, a directory or a glob of shards",
    ),
    output: Path = Arg(
        ...,
        help=".jsonl, .html, or a .spacy directory (DocBin shards); - (stdout), a FIFO or a device is written "
        "to directly; with --ray: a directory of shards",
    ),
    input_format: Optional[str] = Opt(
        None, "--input-format", help="txt, jsonl or spacy (default: from the suffix)", rich_help_panel=ONE_PROCESS
    ),
    output_format: Optional[str] = Opt(
        None, "--output-format", help="jsonl, spacy or html (default: from the suffix); with --ray: jsonl or parquet"
    ),
    batch_size: BatchSizeOpt = 64,
    n_process: int = Opt(1, "--n-process", min=1, help="worker processes (nlp.pipe)", rich_help_panel=ONE_PROCESS),
    engine: EngineOpt = None,
    min_score: MinScoreOpt = None,
    skip_bad_lines: bool = Opt(
        False,
        "--skip-bad-lines",
        help="skip (and count) bad input lines instead of stopping",
        rich_help_panel=ONE_PROCESS,
    ),
    keep_entities: bool = Opt(
        False,
        "--keep-entities",
        help=".spacy input: keep its entities (default: predict from the tokens only)",
        rich_help_panel=ONE_PROCESS,
    ),
    overwrite: OverwriteOpt = False,
    resume: bool = Opt(
        False, "--resume", help="continue an interrupted run from OUTPUT.partial", rich_help_panel=ONE_PROCESS
    ),
    code: CodeOpt = None,
    ray: bool = Opt(False, "--ray", help="run on Ray Data (a local cluster, or --ray-address)", rich_help_panel=RAY),
    ray_address: Optional[str] = Opt(
        None, "--ray-address", help="join this cluster: auto, or ray://host:port", rich_help_panel=RAY
    ),
    actors: int = Opt(
        1, "--actors", min=1, help="--ray: actors, each with the pipeline loaded once", rich_help_panel=RAY
    ),
    cpus_per_actor: int = Opt(
        1, "--cpus-per-actor", min=1, help="--ray: CPUs (and torch threads) per actor", rich_help_panel=RAY
    ),
    gpus_per_actor: float = Opt(0.0, "--gpus-per-actor", min=0.0, help="--ray: GPUs per actor", rich_help_panel=RAY),
    no_progress: NoProgressOpt = False,
) -> None:
    """Tag text, JSONL or DocBin input; write JSONL, DocBin shards or HTML (or, with --ray, shards on a Ray cluster)."""
    check_mode_options(ctx, ray)
    import_code(code)
    if ray:
        from ..tools.distributed import annotate_ray

        print_ray_summary(
            annotate_ray(
                model,
                input,
                output,
                ray_address=ray_address,
                actors=actors,
                cpus_per_actor=cpus_per_actor,
                gpus_per_actor=gpus_per_actor,
                batch_size=batch_size,
                engine=engine,
                min_score=min_score,
                output_format=output_format or "jsonl",
                overwrite=overwrite,
                progress=not no_progress,
                code=code,
            )
        )
        return
    from ..tools.annotate import annotate

    summary = annotate(
        model,
        Path(input),
        output,
        input_format=input_format,
        output_format=output_format,
        batch_size=batch_size,
        n_process=n_process,
        engine=engine,
        min_score=min_score,
        skip_bad_lines=skip_bad_lines,
        keep_entities=keep_entities,
        overwrite=overwrite,
        resume=resume,
        progress=not no_progress,
    )
    print_annotation(summary, console(output))
