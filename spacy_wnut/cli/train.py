"""`tune-bias`, `train-final` and `distill`: the training steps beside `spacy train`."""

from pathlib import Path
from typing import List, Optional

import typer

from ._util import (
    EXTRA_ARGS,
    Arg,
    BatchSizeOpt,
    CodeOpt,
    ComponentOpt,
    EngineOpt,
    GpuOpt,
    ModelArg,
    Opt,
    OverwriteOpt,
    app,
    import_code,
    use_gpu,
    user_errors,
)
from .printers import print_soft_targets, print_tuning


@app.command("tune-bias")
@user_errors
def tune_bias_cmd(
    model: ModelArg,
    dev: Path = Arg(..., help=".spacy DocBin with gold entities (dev, never test)"),
    output: Path = Arg(..., help="directory for the pipeline with the chosen entity_bias and temperature"),
    grid: Optional[str] = Opt(None, "--grid", help="comma-separated values to try (default 0..3)"),
    component: ComponentOpt = None,
    batch_size: BatchSizeOpt = 64,
    no_gold_preproc: bool = Opt(False, "--no-gold-preproc"),
    code: CodeOpt = None,
    gpu_id: GpuOpt = -1,
    overwrite: OverwriteOpt = False,
) -> None:
    """Pick the component's entity_bias on a dev set and fit its entity probabilities' temperature; save the
    pipeline with both."""
    from ..training.tune import parse_grid, tune_and_save

    import_code(code)
    use_gpu(gpu_id)
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
    print_tuning(best, scores, calibration, output)


@app.command("train-final", context_settings=EXTRA_ARGS)
@user_errors
def train_final_cmd(
    ctx: typer.Context,
    config: Path = Arg(..., help="the training config of the selection run"),
    selected: Path = Arg(..., help="the pipeline selected (and tuned) on dev, e.g. training/model-tuned"),
    output: Path = Arg(..., help="directory for the final pipeline"),
    train: List[Path] = Opt(..., "--train", help="training data (repeat: train and dev)"),
    dev: Path = Opt(..., "--dev", help="a dev set spaCy can score while training (not used to select)"),
    component: ComponentOpt = None,
    code: CodeOpt = None,
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help="GPU to train on, -1 for the CPU (as for `spacy train`)"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Retrain on all labelled data for the step count selected on dev, with the selected entity_bias.
    Extra `--section.key value` options override the config, as for `spacy train`."""
    from spacy.cli._util import parse_config_overrides

    from ..training.train_final import train_final

    overrides = parse_config_overrides(ctx.args)
    import_code(code)
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


@app.command("distill", context_settings=EXTRA_ARGS)
@user_errors
def distill_cmd(
    ctx: typer.Context,
    teacher: ModelArg,
    config: Path = Arg(..., help="the student's training config (e.g. configs/distilbert.cfg)"),
    output: Path = Arg(..., help="directory for the soft targets, the student's config, model-best and model-last"),
    train: List[Path] = Opt(..., "--train", help="labelled training data (.spacy; repeat)"),
    dev: Path = Opt(..., "--dev", help="labelled dev data: selects the student on its gold; labelled for train-final"),
    unlabelled: List[Path] = Opt([], "--unlabelled", help="texts without gold (.txt or .jsonl, as annotate reads)"),
    engine: EngineOpt = None,
    component: ComponentOpt = None,
    batch_size: BatchSizeOpt = 64,
    targets_only: bool = Opt(False, "--targets-only", help="write (or check) the soft targets; train nothing"),
    code: CodeOpt = None,
    gpu_id: int = Opt(-1, "--gpu-id", "-g", help="GPU to train on, -1 for the CPU (as for `spacy train`)"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Train a student on a teacher's tag distributions: the teacher labels --train, --dev and --unlabelled
    once (OUTPUT/soft-targets, reused by a rerun), then `spacy train` trains the student's config on
    α·KL(teacher ‖ student) + (1 − α)·cross-entropy(gold) (components.<name>.distill_alpha and
    distill_temperature). Extra `--section.key value` options override the student's config."""
    from spacy.cli._util import parse_config_overrides

    from ..training.distill import distill

    overrides = parse_config_overrides(ctx.args)
    import_code(code)
    use_gpu(gpu_id)
    manifest, student_config = distill(
        teacher,
        config,
        output,
        train,
        dev,
        unlabelled,
        overrides=overrides,
        engine=engine,
        component=component,
        batch_size=batch_size,
        gpu_id=gpu_id,
        targets_only=targets_only,
        overwrite=overwrite,
    )
    print_soft_targets(manifest, output / "soft-targets", student_config)
