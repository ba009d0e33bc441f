"""`evaluate` and `report`: entity scores of a pipeline on gold data."""

from pathlib import Path
from typing import Optional

from ._util import (
    Arg,
    BatchSizeOpt,
    CodeOpt,
    GpuOpt,
    MinScoreOpt,
    ModelArg,
    NoProgressOpt,
    Opt,
    OverwriteOpt,
    app,
    console,
    import_code,
    use_gpu,
    user_errors,
)
from .printers import print_evaluation, print_report


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    model: ModelArg,
    data: Path = Arg(..., help=".spacy DocBin (or directory of them) with gold entities"),
    output: Optional[Path] = Opt(None, "--output", "-o", help="write all scores as JSON here (- for stdout)"),
    batch_size: BatchSizeOpt = 64,
    no_gold_preproc: bool = Opt(False, "--no-gold-preproc", help="predict on spaCy's own tokenization"),
    min_score: MinScoreOpt = None,
    code: CodeOpt = None,
    gpu_id: GpuOpt = -1,
    overwrite: OverwriteOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """spaCy's and seqeval's entity scores of a pipeline, side by side."""
    from ..tools.scoring import run_evaluation

    import_code(code)
    use_gpu(gpu_id)
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
    print_evaluation(result, output, console(output))


@app.command("report")
@user_errors
def report_cmd(
    model: ModelArg,
    data: Path = Arg(..., help=".spacy DocBin with gold entities"),
    output: Path = Arg(..., help="HTML file to write (- for stdout)"),
    worst: int = Opt(20, "--worst", min=0, help="how many of the worst sentences to show"),
    target_precision: float = Opt(
        0.8, "--target-precision", min=0.0, max=1.0, help="name the lowest min_score reaching this precision"
    ),
    batch_size: BatchSizeOpt = 64,
    code: CodeOpt = None,
    gpu_id: GpuOpt = -1,
    overwrite: OverwriteOpt = False,
) -> None:
    """One self-contained HTML evaluation report: scores, charts, the worst sentences."""
    from ..tools.report import write_report

    import_code(code)
    use_gpu(gpu_id)
    report = write_report(
        model,
        data,
        output,
        n_worst=worst,
        batch_size=batch_size,
        overwrite=overwrite,
        target_precision=target_precision,
    )
    print_report(report, output, console(output))
