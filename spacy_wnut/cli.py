"""Command line: `spacy wnut COMMAND ...` (spaCy's own CLI, through the `spacy_cli` entry point) or
`python -m spacy_wnut COMMAND ...`. Each command is a thin wrapper over a library function.

Bad input, outputs that must not be written and missing packages end the
command with exit status 1 and one line on stderr that names the file, line
or option; a run stopped by SIGINT/SIGTERM exits with 128 + the signal number.
"""

import functools
import sys
from pathlib import Path
from typing import Callable, List, Optional

import click
import typer

from .errors import UserError

HELP = "spacy-wnut: transformer subword NER for spaCy (WNUT 17): convert, tag, score, tune, package."
app = typer.Typer(name="wnut", help=HELP, no_args_is_help=True, add_completion=False)
Arg, Opt = typer.Argument, typer.Option
_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def _fail(message: str, code: int = 1) -> None:
    print(f"✘ {message}", file=sys.stderr)
    raise typer.Exit(code)


def user_errors(command: Callable) -> Callable:
    """Turn the errors a user can fix into one line on stderr and exit status 1 (nothing else is caught)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        from .tools.annotate import Interrupted

        try:
            return command(*args, **kwargs)
        except Interrupted as stop:
            _fail(str(stop), stop.exit_code)
        except click.ClickException as err:  # e.g. an unknown `--section.key` override
            _fail(err.format_message(), 2)
        except (UserError, ValueError, OSError, ImportError) as err:
            _fail(str(err))

    return run


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
    output: Path = Arg(..., help="output .spacy file (replaced when complete)"),
    n_sents: int = Opt(1, "--n-sents", min=1, help="sentences per doc"),
    strict: bool = Opt(False, "--strict", help="make repairs errors"),
    any_label: bool = Opt(False, "--any-label", help="accept any entity type, not only WNUT 17's six"),
    no_progress: bool = Opt(False, "--no-progress", help="hide the progress bar"),
) -> None:
    """Convert WNUT-style CoNLL to a spaCy DocBin, reporting every repair."""
    from .data.conll import WNUT17_LABELS
    from .data.convert import convert_conll, print_summary

    summary = convert_conll(
        input,
        output,
        n_sents=n_sents,
        labels=None if any_label else WNUT17_LABELS,
        strict=strict,
        progress=not no_progress,
    )
    print_summary(summary)


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
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """Convert a Hugging Face token-classification dataset to DocBins."""
    import datasets

    from .data.convert import convert_hf_dataset, print_summary

    summaries = convert_hf_dataset(
        datasets.load_dataset(dataset, config),
        output,
        n_sents=n_sents,
        tokens_column=tokens_column,
        tags_column=tags_column,
        strict=strict,
        progress=not no_progress,
    )
    for summary in summaries.values():
        print_summary(summary)


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    model: str = Arg(..., help="pipeline directory or package name"),
    data: Path = Arg(..., help=".spacy DocBin (or directory of them) with gold entities"),
    output: Optional[Path] = Opt(None, "--output", help="write all scores as JSON here"),
    batch_size: int = Opt(64, "--batch-size", min=1),
    no_gold_preproc: bool = Opt(False, "--no-gold-preproc", help="predict on spaCy's own tokenization"),
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """spaCy's and seqeval's entity scores of a pipeline, side by side."""
    from .tools.scoring import print_scores, run_evaluation

    print_scores(
        run_evaluation(
            model, data, output, batch_size=batch_size, gold_preproc=not no_gold_preproc, progress=not no_progress
        ),
        output,
    )


@app.command("tune-bias")
@user_errors
def tune_bias_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name"),
    dev: Path = Arg(..., help=".spacy DocBin with gold entities (dev, never test)"),
    output: Path = Arg(..., help="directory for the pipeline with the chosen entity_bias"),
    grid: Optional[str] = Opt(None, "--grid", help="comma-separated values to try (default 0..3)"),
    component: str = Opt("wnut_ner", "--component", help="name of the wnut_ner component"),
    batch_size: int = Opt(64, "--batch-size", min=1),
    no_gold_preproc: bool = Opt(False, "--no-gold-preproc"),
) -> None:
    """Pick the component's entity_bias on a dev set; save the pipeline with it."""
    from .training.tune import parse_grid, print_bias_scores, tune_and_save

    result = tune_and_save(
        model,
        dev,
        output,
        grid=parse_grid(grid) if grid else None,
        name=component,
        gold_preproc=not no_gold_preproc,
        batch_size=batch_size,
    )
    print_bias_scores(*result, output)


@app.command("report")
@user_errors
def report_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name"),
    data: Path = Arg(..., help=".spacy DocBin with gold entities"),
    output: Path = Arg(..., help="HTML file to write"),
    worst: int = Opt(20, "--worst", min=0, help="how many of the worst sentences to show"),
    batch_size: int = Opt(64, "--batch-size", min=1),
) -> None:
    """One self-contained HTML evaluation report: scores, charts, the worst sentences."""
    from .tools.report import write_report

    print(write_report(model, data, output, n_worst=worst, batch_size=batch_size))
    print(f"wrote {output}")


@app.command("annotate")
@user_errors
def annotate_cmd(
    model: str = Arg(..., help="trained pipeline directory or package name"),
    input: str = Arg(
        ...,
        help=".txt (one doc per line), .jsonl ({'text': ...} + metadata) or .spacy (file or "
        "directory); with --ray: JSONL or Parquet, a file, a directory or a glob of shards",
    ),
    output: Path = Arg(
        ..., help=".jsonl, .html, or a .spacy directory (DocBin shards); with --ray: a directory of shards"
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
    skip_bad_lines: bool = Opt(False, "--skip-bad-lines", help="skip (and count) bad input lines instead of stopping"),
    keep_entities: bool = Opt(
        False, "--keep-entities", help=".spacy input: keep its entities (default: predict from the tokens only)"
    ),
    overwrite: bool = Opt(False, "--overwrite", help="replace an existing output"),
    resume: bool = Opt(False, "--resume", help="continue an interrupted run from OUTPUT.partial"),
    ray: bool = Opt(False, "--ray", help="run on Ray Data (a local cluster, or --ray-address)"),
    ray_address: Optional[str] = Opt(None, "--ray-address", help="join this cluster: auto, or ray://host:port"),
    actors: int = Opt(1, "--actors", min=1, help="--ray: actors, each with the pipeline loaded once"),
    cpus_per_actor: int = Opt(1, "--cpus-per-actor", min=1, help="--ray: CPUs (and torch threads) per actor"),
    gpus_per_actor: float = Opt(0.0, "--gpus-per-actor", min=0.0, help="--ray: GPUs per actor"),
    no_progress: bool = Opt(False, "--no-progress"),
) -> None:
    """Tag text, JSONL or DocBin input; write JSONL, DocBin shards or HTML (or, with --ray, shards on a Ray cluster)."""
    if ray:
        from .tools.distributed import annotate_ray, print_ray_summary

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
                output_format=output_format or "jsonl",
                overwrite=overwrite,
                progress=not no_progress,
            )
        )
        return
    from .tools.annotate import annotate, print_summary

    print_summary(
        annotate(
            model,
            Path(input),
            output,
            input_format=input_format,
            output_format=output_format,
            batch_size=batch_size,
            n_process=n_process,
            engine=engine,
            skip_bad_lines=skip_bad_lines,
            keep_entities=keep_entities,
            overwrite=overwrite,
            resume=resume,
            progress=not no_progress,
        )
    )


@app.command("import-hf")
@user_errors
def import_hf_cmd(
    checkpoint: str = Arg(..., help="hub name or local checkpoint directory"),
    output: Path = Arg(..., help="directory for the spaCy pipeline"),
    scheme: str = Opt("auto", "--scheme", help="tag scheme: auto, IOB2, IOB1, BIOES, BILOU or plain"),
    lang: str = Opt("en", "--lang", help="language of the blank spaCy pipeline"),
) -> None:
    """A HF token-classification checkpoint as a spaCy pipeline (no training)."""
    from .tools.hf_checkpoint import import_hf

    pipe = import_hf(checkpoint, output, scheme=scheme, lang=lang)
    print(f"wrote {output}: {pipe.head.kind} tags {list(pipe.head.tags)} -> labels {list(pipe.labels)}")


@app.command("export-hf")
@user_errors
def export_hf_cmd(
    pipeline: str = Arg(..., help="spaCy pipeline directory or package name"),
    output: Path = Arg(..., help="directory for the checkpoint"),
    component: str = Opt("wnut_ner", "--component", help="name of the wnut_ner component"),
) -> None:
    """A trained component as a HF token-classification checkpoint (safetensors + tokenizer)."""
    from .tools.hf_checkpoint import export_hf

    out = export_hf(pipeline, output, name=component)
    print(f"wrote {out}: load it with AutoModelForTokenClassification.from_pretrained or pipeline('ner')")


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
    gpu_id: int = Opt(-1, "--gpu-id", help="GPU to train on, -1 for the CPU (as for `spacy train`)"),
) -> None:
    """Retrain on all labelled data for the step count selected on dev, with the selected entity_bias.
    Extra `--section.key value` options override the config, as for `spacy train`."""
    from spacy.cli._util import parse_config_overrides

    from .training.train_final import train_final

    overrides = parse_config_overrides(ctx.args)
    info = train_final(config, selected, output, train, dev, overrides=overrides, gpu_id=gpu_id)
    print(
        f"wrote {output}: {info['steps']} steps on {', '.join(map(str, train))} (schedule of {info['total_steps']} "
        f"steps), entity_bias {info['entity_bias']:g}"
    )


@app.command("package-meta")
@user_errors
def package_meta_cmd(
    model: Path = Arg(..., help="the pipeline to package"),
    scores: Path = Arg(..., help="its test scores: `evaluate --output` JSON"),
    output: Path = Arg(..., help="meta.json to write, for `spacy package --meta-path`"),
    name: str = Opt("wnut_ner", "--name", help="package name (spaCy adds the language: en_wnut_ner)"),
    version: str = Opt("0.1.0", "--version"),
    backbone: Optional[str] = Opt(None, "--backbone", help="the backbone's name, as users know it"),
) -> None:
    """meta.json for `spacy package`: WNUT 17 test scores, backbone, data source, licence, requirements."""
    from .tools.model_card import write_package_meta

    write_package_meta(model, scores, output, name=name, version=version, backbone=backbone)
    print(f"wrote {output}")


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
    from .tools.annotation.export import export_tasks, print_summary

    print_summary(
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
    from .tools.annotation.importer import import_tasks, print_summary

    print_summary(
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
    drain_timeout: int = Opt(30, "--drain-timeout", min=0, help="seconds a stop waits for requests in flight"),
    mmap_threshold: int = Opt(
        65536, "--mmap-threshold", min=0, help="glibc M_MMAP_THRESHOLD in bytes, keeps RSS flat (0: glibc's own)"
    ),
    code: Optional[Path] = Opt(
        None, "--code", help="Python file to import first (custom components), as for spacy train"
    ),
    access_log: bool = Opt(True, "--access-log/--no-access-log", help="log one line per request"),
) -> None:
    """Serve a pipeline over HTTP: POST /v1/entities with dynamic batching; /health, /ready, /metrics, /docs.
    SIGTERM or SIGINT drains the requests in flight and exits 0."""
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
        mmap_threshold=mmap_threshold,
    )
    serve(model, settings, host=host, port=port, access_log=access_log)


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


_register_with_spacy()
