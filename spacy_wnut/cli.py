"""Command line: `spacy wnut COMMAND ...` (spaCy's own CLI, through the `spacy_cli` entry point) or
`python -m spacy_wnut COMMAND ...`. Each command is a thin wrapper over a library function; what
the library returns is printed here.

Errors a user can fix (`spacy_wnut.errors.UserError`: bad input, outputs that
must not be written, bad options or configs, missing packages) and click's usage
errors end the command with one line on stderr that names the file, line or
option, and exit status 1 (2 for usage errors; a run stopped by SIGINT/SIGTERM
exits with 128 + the signal number). Anything else is a bug and keeps its traceback.
Options follow spaCy's CLI: `--output/-o`, `--code/-c`, `--gpu-id/-g`,
`--overwrite`; an output of `-` is stdout (the summary then goes to stderr).
"""

import functools
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, TextIO

import click
import typer

from .errors import ConfigError, UserError

HELP = "spacy-wnut: transformer subword NER for spaCy (WNUT 17): convert, tag, score, tune, package."
app = typer.Typer(name="wnut", help=HELP, no_args_is_help=True, add_completion=False)
Arg, Opt = typer.Argument, typer.Option
_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
_LISTED = 20  # line numbers listed in a summary, per reason
# Usage errors: click's (raised by spaCy's config-override parser) and those of the click typer carries.
_USAGE_ERRORS = tuple(
    {click.ClickException, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")}
)


def _fail(message: str, code: int = 1) -> None:
    print(f"✘ {message}", file=sys.stderr)
    raise typer.Exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"⚠ {message}", file=sys.stderr)


def user_errors(command: Callable) -> Callable:
    """Turn the errors a user can fix (and usage errors) into one line on stderr; nothing else is caught.
    Warnings are shown in one line too."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except _USAGE_ERRORS as err:  # e.g. an unknown `--section.key` override
                _fail(err.format_message(), 2)
            except UserError as err:
                _fail(str(err), err.exit_code)

    return run


def _console(*outputs) -> TextIO:
    """Where a command's summary goes: stderr when one of its outputs is stdout (`-`, `/dev/stdout`), else stdout."""
    from .data.outputs import is_stdout

    return sys.stderr if any(is_stdout(output) for output in outputs if output is not None) else sys.stdout


def _import_code(code: Optional[Path]) -> None:
    """`--code`: import a Python file with registered functions (custom components, architectures), as spaCy does."""
    if code is None:
        return
    if not Path(code).is_file():
        raise ConfigError(f"--code {code}: no such file")
    from spacy.util import import_file

    import_file("python_code", code)


def _use_gpu(gpu_id: int) -> None:
    """`--gpu-id`: run on that GPU (-1: the CPU), as `spacy evaluate` does."""
    if gpu_id < 0:
        return
    from thinc.api import require_gpu

    try:
        require_gpu(gpu_id)
    except ValueError as err:
        raise ConfigError(f"--gpu-id {gpu_id}: {err}") from None


def _given(ctx: typer.Context, options: Dict[str, str]) -> List[str]:
    """Which of `options` (parameter name -> option as spelled) were given on the command line."""
    sources = {name: ctx.get_parameter_source(name) for name in options}
    return [flag for name, flag in options.items() if sources[name] is not None and sources[name].name != "DEFAULT"]


_CODE_HELP = "Python file with registered functions (custom components, architectures) to import first"
_GPU_HELP = "GPU to run on, -1 for the CPU"
_MIN_SCORE_HELP = "drop entities whose probability is below this (0 to 1; default: the pipeline's min_score)"
_OVERWRITE_HELP = "replace an existing output"
_COMPONENT_HELP = "the wnut_ner component's name (default: the pipeline's one wnut_ner component)"


def prf_table(rows, first: str = "", extra: tuple = ()) -> str:
    """The one P/R/F1 table every command prints: rows of (name, P, R, F1, *extra columns)."""
    from wasabi import table

    data = [(name, f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", *more) for name, p, r, f, *more in rows]
    aligns = ("l", "r", "r", "r") + ("r",) * len(extra)
    return table(data, header=(first, "P", "R", "F1", *extra), divider=True, aligns=aligns)


def score_rows(spacy_scores, seqeval) -> list:
    """Rows for `prf_table`: both scorers overall, then seqeval per type (with support).

    Without seqeval (a run-time install, no `[train]`), spaCy's scorer overall and per type.
    """
    if "f" not in seqeval:
        rows = [("spaCy scorer (no seqeval: pip install 'spacy-wnut[train]')", *_prf(spacy_scores, "ents_"), "")]
        per_type = spacy_scores["ents_per_type"] or {}
        return rows + [(f"  {label}", *_prf(row), "") for label, row in sorted(per_type.items())]
    total = sum(row["support"] for row in seqeval["per_type"].values())
    rows = [
        ("spaCy scorer", spacy_scores["ents_p"], spacy_scores["ents_r"], spacy_scores["ents_f"], total),
        ("seqeval", seqeval["p"], seqeval["r"], seqeval["f"], total),
    ]
    for label, row in sorted(seqeval["per_type"].items()):
        rows.append((f"  {label}", row["p"], row["r"], row["f"], row["support"]))
    return rows


def _prf(scores, prefix: str = "") -> tuple:
    return scores[f"{prefix}p"], scores[f"{prefix}r"], scores[f"{prefix}f"]


def print_conversion(summary, out: TextIO = None, max_repairs: int = 20) -> None:
    """What a conversion wrote, and every kind of repair (the first `max_repairs` located)."""
    out = out or sys.stdout
    print(
        f"✔ {summary.source} -> {summary.output}: {summary.docs} docs, {summary.sentences} sentences, "
        f"{summary.tokens} tokens, {sum(summary.entities.values())} entities",
        file=out,
    )
    if summary.entities:
        from wasabi import table

        print(table(sorted(summary.entities.items()), header=("entity type", "count"), divider=True), file=out)
    if summary.tab_separators:
        print(f"ℹ {summary.tab_separators} sentence separators were lines holding only a tab", file=out)
    if summary.byte_order_mark:
        print("ℹ the UTF-8 byte-order mark opening the file was removed (it is no part of the first token)", file=out)
    if getattr(summary, "docstarts", 0):
        print(f"ℹ {summary.docstarts} -DOCSTART- line(s) (document markers, not tokens) were left out", file=out)
    if summary.repairs:
        print(f"⚠ {len(summary.repairs)} repairs (use --strict to make them errors):", file=out)
        for repair in summary.repairs[:max_repairs]:
            print(f"  {repair.where}: {repair.problem}", file=out)
        if len(summary.repairs) > max_repairs:
            print(f"  ... and {len(summary.repairs) - max_repairs} more", file=out)
    else:
        print("ℹ no repairs", file=out)


def print_annotation(summary, out: TextIO = None) -> None:
    """Docs in/out, skipped lines by reason (with line numbers), blank lines, renamed fields, entities."""
    out = out or sys.stdout
    if summary.resumed_after is not None:
        source, line = summary.resumed_after
        print(f"resumed after {source}:{line} ({summary.already_done} docs were already written)", file=out)
    print(f"docs in: {summary.docs_in}, docs out: {summary.docs_out}", file=out)
    for reason, count in summary.skipped.items():
        lines = ", ".join(map(str, summary.skipped_lines[reason]))
        more = " ..." if count > len(summary.skipped_lines[reason]) else ""
        print(f"skipped {count} line(s), {reason}: line {lines}{more}", file=out)
    if summary.blank_lines:
        listed = ", ".join(map(str, summary.blank_lines[:_LISTED]))
        more = " ..." if len(summary.blank_lines) > _LISTED else ""
        print(f"blank lines (no doc): {len(summary.blank_lines)}: line {listed}{more}", file=out)
    for name, count in summary.renamed_fields.items():
        print(f"input field {name!r} renamed to 'input_{name}' in {count} record(s) (it is an output field)", file=out)
    if summary.entities:
        print("entities: " + ", ".join(f"{label} {n}" for label, n in summary.entities.most_common()), file=out)
    for output in summary.outputs:
        print(f"wrote {output}", file=out)


def print_task_export(summary) -> None:
    """What was read (as `annotate` says it), how uncertain it was, what was selected and written."""
    outputs, summary.outputs = summary.outputs, []
    print_annotation(summary)
    summary.outputs = outputs
    if summary.docs_out:
        print(f"uncertainty (1 - lowest token margin): mean {summary.uncertainty_sum / summary.docs_out:.3f} over all")
    if summary.selected_uncertainties:
        values = summary.selected_uncertainties
        print(
            f"selected {summary.selected} of {summary.docs_out} ({summary.selection}): uncertainty "
            f"{min(values):.3f} to {max(values):.3f}, mean {sum(values) / len(values):.3f}"
        )
    for output in summary.outputs:
        print(f"wrote {output}")


def print_task_import(summary, listed: int = 5) -> None:
    """What was read and written; every skip and repair, counted, its first places listed."""
    from wasabi import msg

    report = summary.report
    print(
        f"✔ {summary.source} ({summary.format}) -> {summary.output}: {summary.tasks} tasks, {summary.docs} docs, "
        f"{summary.tokens} tokens, {sum(summary.entities.values())} entities"
    )
    if summary.entities:
        msg.table(sorted(summary.entities.items()), header=("entity type", "count"), divider=True)
    for title, counts, places in (
        ("skipped", report.skipped, report.skipped_where),
        ("repaired or chosen by rule", report.repairs, report.repair_where),
    ):
        for kind, count in counts.items():
            print(f"{title}: {count} × {kind}")
            for place in places[kind][:listed]:
                print(f"  {place}")
            if count > min(listed, len(places[kind])):
                print(f"  ... and {count - min(listed, len(places[kind]))} more")
    if not report.repairs:
        msg.info("no repairs")


def print_ray_summary(summary) -> None:
    """Files and records in/out/errors (and the check that they add up), entities, timings."""
    from .tools.distributed import ERRORS_DIR

    ignored = f"; left out (hidden or _-named): {', '.join(summary.ignored_files)}" if summary.ignored_files else ""
    print(f"input files: {summary.input_files}{ignored}")
    print(
        f"records in: {summary.records_in}, written: {summary.records_out}, error records: {summary.error_records} "
        f"({'adds up' if summary.balanced else 'DOES NOT ADD UP'}); blank lines: {summary.blank_lines}"
    )
    for reason, count in summary.errors.items():
        print(f"error records, {reason}: {count}")
    if summary.entities:
        print("entities: " + ", ".join(f"{label} {n}" for label, n in summary.entities.most_common()))
    print(
        f"{summary.actors} actor(s), {summary.batches} batches; start-up {summary.startup_seconds:.1f}s, "
        f"pipeline load {summary.model_load_seconds:.1f}s per actor, run {summary.run_seconds:.1f}s"
    )
    for output in summary.outputs:
        print(f"wrote {output} (errors in {Path(output) / ERRORS_DIR})")


@app.command("fetch")
@user_errors
def fetch_cmd(
    dest: Path = Arg(..., help="directory to put the files in"),
    mirror: Optional[str] = Opt(None, "--mirror", help="local directory holding copies (used before the URLs)"),
) -> None:
    """Fetch the three WNUT 17 files, sha256-verified (kept if already there)."""
    from .data.assets import fetch_wnut17

    fetch_wnut17(dest, mirror=mirror or None)


@app.command("convert")
@user_errors
def convert_cmd(
    input: Path = Arg(..., help="CoNLL file: TOKEN<TAB>TAG lines, IOB2"),
    output: Path = Arg(..., help="output .spacy file (replaced when complete), - for stdout"),
    n_sents: int = Opt(1, "--n-sents", min=1, help="sentences per doc"),
    strict: bool = Opt(False, "--strict", help="make repairs errors"),
    any_label: bool = Opt(False, "--any-label", help="accept any entity type, not only WNUT 17's six"),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
    no_progress: bool = Opt(False, "--no-progress", help="hide the progress bar"),
) -> None:
    """Convert WNUT-style CoNLL to a spaCy DocBin, reporting every repair."""
    from .data.conll import WNUT17_LABELS
    from .data.convert import convert_conll

    summary = convert_conll(
        input,
        output,
        n_sents=n_sents,
        labels=None if any_label else WNUT17_LABELS,
        strict=strict,
        progress=not no_progress,
        overwrite=overwrite,
    )
    print_conversion(summary, _console(output))


@app.command("convert-hf")
@user_errors
def convert_hf_cmd(
    dataset: str = Arg(..., help="hub name or local path for datasets.load_dataset"),
    output: Path = Arg(..., help="directory: one <split>.spacy per split"),
    config: Optional[str] = Opt(None, "--config", help="dataset configuration name"),
    tokens_column: str = Opt("tokens", "--tokens-column"),
    tags_column: str = Opt("ner_tags", "--tags-column"),
    n_sents: int = Opt(1, "--n-sents", min=1, help="sentences per doc"),
    strict: bool = Opt(False, "--strict", help="make repairs errors"),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """Convert a Hugging Face token-classification dataset to DocBins."""
    from .data.convert import convert_hf_dataset
    from .errors import require

    require("convert-hf", ["datasets"], "train")
    import datasets

    summaries = convert_hf_dataset(
        datasets.load_dataset(dataset, config),
        output,
        n_sents=n_sents,
        tokens_column=tokens_column,
        tags_column=tags_column,
        strict=strict,
        progress=not no_progress,
        overwrite=overwrite,
    )
    for summary in summaries.values():
        print_conversion(summary)


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    model: str = Arg(..., help="pipeline directory or package name"),
    data: Path = Arg(..., help=".spacy DocBin (or directory of them) with gold entities"),
    output: Optional[Path] = Opt(None, "--output", "-o", help="write all scores as JSON here (- for stdout)"),
    batch_size: int = Opt(64, "--batch-size", min=1),
    no_gold_preproc: bool = Opt(False, "--no-gold-preproc", help="predict on spaCy's own tokenization"),
    min_score: Optional[float] = Opt(None, "--min-score", min=0.0, max=1.0, help=_MIN_SCORE_HELP),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help=_GPU_HELP),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """spaCy's and seqeval's entity scores of a pipeline, side by side."""
    from .tools.scoring import run_evaluation

    _import_code(code)
    _use_gpu(gpu_id)
    result = run_evaluation(
        model,
        data,
        output,
        batch_size=batch_size,
        gold_preproc=not no_gold_preproc,
        progress=not no_progress,
        overwrite=overwrite,
        min_score=min_score,
    )
    out = _console(output)
    print(prf_table(score_rows(result["spacy"], result["seqeval"]), "scorer / type", ("support",)), file=out)
    print(
        f"{result['docs']} docs in {result['seconds']:.1f}s; "
        f"unscorable predicted entities: {result['unscorable_predicted_entities']}; "
        f"alignment: {result['alignment_stats']}",
        file=out,
    )
    if output is not None:
        print(f"wrote {output}", file=out)


@app.command("tune-bias")
@user_errors
def tune_bias_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name"),
    dev: Path = Arg(..., help=".spacy DocBin with gold entities (dev, never test)"),
    output: Path = Arg(..., help="directory for the pipeline with the chosen entity_bias and temperature"),
    grid: Optional[str] = Opt(None, "--grid", help="comma-separated values to try (default 0..3)"),
    component: Optional[str] = Opt(None, "--component", help=_COMPONENT_HELP),
    batch_size: int = Opt(64, "--batch-size", min=1),
    no_gold_preproc: bool = Opt(False, "--no-gold-preproc"),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help=_GPU_HELP),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Pick the component's entity_bias on a dev set and fit its entity probabilities' temperature; save the
    pipeline with both."""
    from .training.tune import parse_grid, tune_and_save

    _import_code(code)
    _use_gpu(gpu_id)
    best, scores, calibration = tune_and_save(
        model,
        dev,
        output,
        grid=None if grid is None else parse_grid(grid),
        name=component,
        gold_preproc=not no_gold_preproc,
        batch_size=batch_size,
        overwrite=overwrite,
    )
    rows = [(f"{s.bias:g}", s.p, s.r, s.f, "<- best" if s == best else "") for s in scores]
    print(prf_table(rows, "entity_bias", ("",)))
    print(
        f"wrote {output} with entity_bias = {best.bias:g} (dev F1 {best.f:.4f}, "
        f"{best.f - scores[0].f:+.4f} over entity_bias = {scores[0].bias:g}) and temperature = "
        f"{calibration['after']['temperature']:.3f} (dev ECE of the entity probabilities "
        f"{calibration['before']['ece']:.3f} -> {calibration['after']['ece']:.3f})"
    )


@app.command("report")
@user_errors
def report_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name"),
    data: Path = Arg(..., help=".spacy DocBin with gold entities"),
    output: Path = Arg(..., help="HTML file to write (- for stdout)"),
    worst: int = Opt(20, "--worst", min=0, help="how many of the worst sentences to show"),
    target_precision: float = Opt(
        0.8, "--target-precision", min=0.0, max=1.0, help="name the lowest min_score reaching this precision"
    ),
    batch_size: int = Opt(64, "--batch-size", min=1),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help=_GPU_HELP),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """One self-contained HTML evaluation report: scores, charts, the worst sentences."""
    from .tools.report import write_report

    _import_code(code)
    _use_gpu(gpu_id)
    report = write_report(
        model,
        data,
        output,
        n_worst=worst,
        batch_size=batch_size,
        overwrite=overwrite,
        target_precision=target_precision,
    )
    out = _console(output)
    print(f"{report.n_docs} docs", file=out)
    print(prf_table(score_rows(report.spacy_scores, report.seqeval), "scorer / type", ("support",)), file=out)
    if report.worst:
        errors, example = report.worst[0]
        print(f"worst sentence: {errors} entity error(s): {example.reference.text[:80]}", file=out)
    print(f"wrote {output}", file=out)


_RAY_ONLY = {
    "ray_address": "--ray-address",
    "actors": "--actors",
    "cpus_per_actor": "--cpus-per-actor",
    "gpus_per_actor": "--gpus-per-actor",
}
_NOT_WITH_RAY = {
    "input_format": "--input-format",
    "n_process": "--n-process",
    "skip_bad_lines": "--skip-bad-lines",
    "keep_entities": "--keep-entities",
    "resume": "--resume",
}
_WHY_NOT_WITH_RAY = {
    "--input-format": "the format is each file's suffix",
    "--n-process": "use --actors",
    "--skip-bad-lines": "bad records always go to OUTPUT/_errors/",
    "--keep-entities": "it reads no .spacy input",
    "--resume": "a Ray run cannot be resumed (rerun with --overwrite)",
}


def _check_annotate_options(ctx: typer.Context, ray: bool) -> None:
    """Refuse options that do nothing in this mode, naming them (and why)."""
    if ray:
        given = _given(ctx, _NOT_WITH_RAY)
        if given:
            reasons = "; ".join(f"{flag}: {_WHY_NOT_WITH_RAY[flag]}" for flag in given)
            raise ConfigError(f"--ray does not take {', '.join(given)} ({reasons})")
    else:
        given = _given(ctx, _RAY_ONLY)
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --ray")


@app.command("annotate")
@user_errors
def annotate_cmd(
    ctx: typer.Context,
    model: str = Arg(..., help="trained pipeline directory or package name"),
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
    input_format: Optional[str] = Opt(None, "--input-format", help="txt, jsonl or spacy (default: from the suffix)"),
    output_format: Optional[str] = Opt(
        None, "--output-format", help="jsonl, spacy or html (default: from the suffix); with --ray: jsonl or parquet"
    ),
    batch_size: int = Opt(64, "--batch-size", min=1),
    n_process: int = Opt(1, "--n-process", min=1, help="worker processes (nlp.pipe)"),
    engine: Optional[str] = Opt(
        None, "--engine", help="inference engine: torch, onnx, onnx-int8, torch-int8 (default: the pipeline's)"
    ),
    min_score: Optional[float] = Opt(None, "--min-score", min=0.0, max=1.0, help=_MIN_SCORE_HELP),
    skip_bad_lines: bool = Opt(False, "--skip-bad-lines", help="skip (and count) bad input lines instead of stopping"),
    keep_entities: bool = Opt(
        False, "--keep-entities", help=".spacy input: keep its entities (default: predict from the tokens only)"
    ),
    overwrite: bool = Opt(False, "--overwrite", help="replace an existing output (or a partial one)"),
    resume: bool = Opt(False, "--resume", help="continue an interrupted run from OUTPUT.partial"),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    ray: bool = Opt(False, "--ray", help="run on Ray Data (a local cluster, or --ray-address)"),
    ray_address: Optional[str] = Opt(None, "--ray-address", help="join this cluster: auto, or ray://host:port"),
    actors: int = Opt(1, "--actors", min=1, help="--ray: actors, each with the pipeline loaded once"),
    cpus_per_actor: int = Opt(1, "--cpus-per-actor", min=1, help="--ray: CPUs (and torch threads) per actor"),
    gpus_per_actor: float = Opt(0.0, "--gpus-per-actor", min=0.0, help="--ray: GPUs per actor"),
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """Tag text, JSONL or DocBin input; write JSONL, DocBin shards or HTML (or, with --ray, shards on a Ray cluster)."""
    _check_annotate_options(ctx, ray)
    _import_code(code)
    if ray:
        from .tools.distributed import annotate_ray

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
    from .tools.annotate import annotate

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
    print_annotation(summary, _console(output))


@app.command("import-hf")
@user_errors
def import_hf_cmd(
    checkpoint: str = Arg(..., help="hub name or local checkpoint directory"),
    output: Path = Arg(..., help="directory for the spaCy pipeline"),
    scheme: str = Opt("auto", "--scheme", help="tag scheme: auto, IOB2, IOB1, BIOES, BILOU or plain"),
    lang: str = Opt("en", "--lang", help="language of the blank spaCy pipeline"),
    component: str = Opt("wnut_ner", "--component", help="name of the component in the new pipeline"),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """A HF token-classification checkpoint as a spaCy pipeline (no training)."""
    from .tools.hf_checkpoint import import_hf

    pipe = import_hf(checkpoint, output, scheme=scheme, lang=lang, name=component, overwrite=overwrite)
    print(f"wrote {output}: {pipe.head.kind} tags {list(pipe.head.tags)} -> labels {list(pipe.labels)}")


@app.command("export-hf")
@user_errors
def export_hf_cmd(
    pipeline: str = Arg(..., help="spaCy pipeline directory or package name"),
    output: Path = Arg(..., help="directory for the checkpoint"),
    component: Optional[str] = Opt(None, "--component", help=_COMPONENT_HELP),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """A trained component as a HF token-classification checkpoint (safetensors + tokenizer)."""
    from .tools.hf_checkpoint import export_hf

    _import_code(code)
    out = export_hf(pipeline, output, name=component, overwrite=overwrite)
    print(f"wrote {out}: load it with AutoModelForTokenClassification.from_pretrained or pipeline('ner')")


@app.command("migrate")
@user_errors
def migrate_cmd(
    old: str = Arg(..., help="pipeline saved by spacy-wnut 0.3 or earlier (directory or package name)"),
    new: Path = Arg(..., help="directory for the pipeline in the 0.4 format"),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """A 0.2/0.3 pipeline (spacy-transformers' encoder) in the 0.4 format: own encoder, safetensors weights."""
    from .tools.migrate import migrate_pipeline, summary_line

    print(summary_line(migrate_pipeline(old, new, overwrite=overwrite), old))


@app.command("export-runtime")
@user_errors
def export_runtime_cmd(
    pipeline: str = Arg(..., help="trained pipeline directory or package name"),
    output: Path = Arg(..., help="directory for the run-time pipeline"),
    int8: bool = Opt(False, "--int8/--fp32", help="an int8 graph (smaller, faster; check its F1) or fp32"),
    component: Optional[str] = Opt(None, "--component", help="the wnut_ner component, if there are several"),
    overwrite: bool = Opt(False, "--overwrite", help="replace an existing output"),
) -> None:
    """A run-time pipeline of a trained one: ONNX Runtime + tokenizers, no torch, transformers or spacy-transformers."""
    from .tools.runtime_export import export_runtime

    done = export_runtime(pipeline, output, int8=int8, component=component, overwrite=overwrite)
    print(
        f"wrote {done.output}: [{done.component}] {done.graph} ONNX graph ({done.onnx_bytes / 1e6:.1f} MB) "
        f"from {done.source}; it loads with spacy.load and needs only `pip install spacy-wnut`"
    )


@app.command("train-final", context_settings=_EXTRA_ARGS)
@user_errors
def train_final_cmd(
    ctx: typer.Context,
    config: Path = Arg(..., help="the training config of the selection run"),
    selected: Path = Arg(..., help="the pipeline selected (and tuned) on dev, e.g. training/model-tuned"),
    output: Path = Arg(..., help="directory for the final pipeline"),
    train: List[Path] = Opt(..., "--train", help="training data (repeat: train and dev)"),
    dev: Path = Opt(..., "--dev", help="a dev set spaCy can score while training (not used to select)"),
    component: Optional[str] = Opt(None, "--component", help=_COMPONENT_HELP),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help="GPU to train on, -1 for the CPU (as for `spacy train`)"),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """Retrain on all labelled data for the step count selected on dev, with the selected entity_bias.
    Extra `--section.key value` options override the config, as for `spacy train`."""
    from spacy.cli._util import parse_config_overrides

    from .training.train_final import train_final

    overrides = parse_config_overrides(ctx.args)
    _import_code(code)
    info = train_final(
        config,
        selected,
        output,
        train,
        dev,
        overrides=overrides,
        gpu_id=gpu_id,
        component=component,
        overwrite=overwrite,
    )
    print(
        f"wrote {output}: {info['steps']} steps on {', '.join(map(str, train))} (schedule of {info['total_steps']} "
        f"steps), entity_bias {info['entity_bias']:g}"
    )


@app.command("package-meta")
@user_errors
def package_meta_cmd(
    model: Path = Arg(..., help="the pipeline to package"),
    scores: Path = Arg(..., help="its test scores: `evaluate --output` JSON"),
    output: Path = Arg(..., help="meta.json to write, for `spacy package --meta-path` (- for stdout)"),
    name: str = Opt("wnut_ner", "--name", help="package name (spaCy adds the language: en_wnut_ner)"),
    version: str = Opt("0.1.0", "--version"),
    backbone: Optional[str] = Opt(None, "--backbone", help="the backbone's name, as users know it"),
    component: Optional[str] = Opt(None, "--component", help=_COMPONENT_HELP),
    code: Optional[Path] = Opt(None, "--code", "-c", help=_CODE_HELP),
    overwrite: bool = Opt(False, "--overwrite", help=_OVERWRITE_HELP),
) -> None:
    """meta.json for `spacy package`: WNUT 17 test scores, backbone, data source, licence, requirements."""
    from .tools.model_card import write_package_meta

    _import_code(code)
    write_package_meta(
        model, scores, output, name=name, version=version, backbone=backbone, component=component, overwrite=overwrite
    )
    print(f"wrote {output}", file=_console(output))


@app.command("export-tasks")
@user_errors
def export_tasks_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name"),
    input: Path = Arg(..., help=".txt (one text per line), .jsonl ({'text': ...} + metadata) or .spacy (file or dir)"),
    output: Path = Arg(..., help="tasks file: .json for label-studio (config written beside it), .jsonl otherwise"),
    format: str = Opt(..., "--format", help="label-studio, doccano or prodigy"),
    select: str = Opt("all", "--select", help="uncertain (most uncertain first), random (seeded) or all (in order)"),
    limit: Optional[int] = Opt(None, "--limit", min=1, help="how many tasks to write (default: all)"),
    seed: int = Opt(0, "--seed", help="seed of --select random"),
    input_format: Optional[str] = Opt(None, "--input-format", help="txt, jsonl or spacy (default: from the suffix)"),
    batch_size: int = Opt(64, "--batch-size", min=1),
    skip_bad_lines: bool = Opt(False, "--skip-bad-lines", help="skip (and count) bad input lines instead of stopping"),
    model_version: Optional[str] = Opt(None, "--model-version", help="names the model in the tasks (default: meta)"),
    overwrite: bool = Opt(False, "--overwrite", help="replace existing outputs"),
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """Predictions as pre-annotated tasks for Label Studio, doccano or Prodigy, with scores and uncertainty."""
    from .tools.annotation.export import export_tasks

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
    overwrite: bool = Opt(False, "--overwrite", help="replace an existing output"),
) -> None:
    """Corrected annotations from Label Studio, doccano or Prodigy as a DocBin, every repair counted."""
    from .tools.annotation.importer import import_tasks

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


@app.command("serve")
@user_errors
def serve_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name (a run-time pipeline needs no torch)"),
    host: str = Opt("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = Opt(8080, "--port", min=1, max=65535),
    engine: Optional[str] = Opt(
        None, "--engine", help="inference engine: torch, onnx, onnx-int8, torch-int8 (default: the pipeline's)"
    ),
    max_batch: int = Opt(64, "--max-batch", min=1, help="most texts per nlp.pipe call"),
    max_wait_ms: float = Opt(5.0, "--max-wait-ms", min=0.0, help="how long a batch waits to fill, in ms"),
    max_queue: int = Opt(1024, "--max-queue", min=1, help="most texts waiting; a request that does not fit gets 503"),
    max_texts: int = Opt(256, "--max-texts", min=1, help="most texts in one request (413 above)"),
    max_body_bytes: int = Opt(1_048_576, "--max-body-bytes", min=1, help="largest request body (413 above)"),
    max_length: Optional[int] = Opt(
        None, "--max-length", min=1, help="longest text in characters, 413 above (default: the pipeline's max_length)"
    ),
    threads: Optional[int] = Opt(None, "--threads", min=1, help="CPU threads of the forward pass"),
    no_batching: bool = Opt(False, "--no-batching", help="tag one text per nlp call (to compare)"),
    drain_timeout: int = Opt(
        30, "--drain-timeout", min=0, help="seconds a stop waits for requests in flight (then: 503, exit 1)"
    ),
    read_timeout: float = Opt(
        30.0, "--read-timeout", min=0.001, help="seconds to send a request's head, then its body (408)"
    ),
    keep_alive_timeout: float = Opt(5.0, "--keep-alive-timeout", min=0.001, help="seconds an idle connection stays"),
    request_timeout: float = Opt(
        60.0, "--request-timeout", min=0.001, help="seconds from a request's body to its answer (then 503)"
    ),
    max_connections: Optional[int] = Opt(
        None, "--max-connections", min=1, help="most open connections (default: the open-file limit less 192)"
    ),
    mmap_threshold: int = Opt(
        1_048_576, "--mmap-threshold", min=0, help="glibc M_MMAP_THRESHOLD in bytes, keeps RSS flat (0: glibc's own)"
    ),
    code: Optional[Path] = Opt(
        None, "--code", help="Python file to import first (custom components), as for spacy train"
    ),
    access_log: bool = Opt(True, "--access-log/--no-access-log", help="log one line per request"),
) -> None:
    """Serve a pipeline over HTTP: POST /v1/entities with dynamic batching; /health, /ready, /metrics, /docs.
    SIGTERM or SIGINT drains the requests in flight and exits 0 (1 if some got 503 after --drain-timeout)."""
    from .errors import require

    require("spacy wnut serve", ["fastapi", "uvicorn", "prometheus_client"], "serve")
    from spacy.cli._util import import_code

    from .tools.serve import ServeSettings, serve

    import_code(code)
    settings = ServeSettings(
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_texts=max_texts,
        max_body_bytes=max_body_bytes,
        max_length=max_length,
        threads=threads,
        engine=engine,
        batching=not no_batching,
        drain_timeout=drain_timeout,
        read_timeout=read_timeout,
        keep_alive_timeout=keep_alive_timeout,
        request_timeout=request_timeout,
        max_connections=max_connections,
        mmap_threshold=mmap_threshold,
    )
    stopped = serve(model, settings, host=host, port=port, access_log=access_log)
    status = 1 if stopped.unanswered else 0
    if stopped.worker_busy:  # a batch nobody waits for: do not wait for it at exit
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if status:
        raise typer.Exit(status)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the CLI as `python -m spacy_wnut`; returns the exit status."""
    try:
        result = app(args=argv, prog_name="python -m spacy_wnut", standalone_mode=False)
    except typer.Exit as stop:
        return stop.exit_code
    except Exception as err:  # usage errors (bad option values), shown as the command line shows them
        if hasattr(err, "show") and hasattr(err, "exit_code"):
            err.show()
            return err.exit_code
        raise
    return result if isinstance(result, int) else 0


def _register_with_spacy() -> None:
    """Add `wnut` to spaCy's own command line (`spacy wnut ...`)."""
    from spacy.cli._util import app as spacy_app

    if not any(group.name == "wnut" for group in spacy_app.registered_groups):
        spacy_app.add_typer(app, name="wnut")


# Loaded by spaCy's CLI (the `spacy_cli` entry point), spaCy is already imported: register there. Run as
# `python -m spacy_wnut`, spaCy (and with it thinc and torch) is not imported for commands that need none.
if "spacy.cli._util" in sys.modules:
    _register_with_spacy()
