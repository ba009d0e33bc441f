"""What every command shares: the app, the error handling, the options declared once, small helpers.

Errors a user can fix (`spacy_wnut.errors.UserError`: bad input, outputs that
must not be written, bad options or configs, missing packages) and click's usage
errors end the command with one line on stderr that names the file, line or
option, and exit status 1 (2 for usage errors; a run stopped by SIGINT/SIGTERM
exits with 128 + the signal number). Anything else is a bug and keeps its traceback.
Options follow spaCy's CLI: `--output/-o`, `--code/-c`, `--gpu-id/-g`,
`--overwrite`; an output of `-` is stdout (the summary then goes to stderr).
"""

import functools
import sys
import warnings
from pathlib import Path
from typing import Annotated, Callable, Dict, List, Optional, TextIO

import click
import typer

from ..errors import ConfigError, UserError

HELP = "spacy-wnut: transformer subword NER for spaCy (WNUT 17): convert, tag, score, tune, package."
app = typer.Typer(name="wnut", help=HELP, no_args_is_help=True, add_completion=False)
Arg, Opt = typer.Argument, typer.Option
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
# Usage errors: click's (raised by spaCy's config-override parser) and those of the click typer carries.
_USAGE_ERRORS = tuple(
    {click.ClickException, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")}
)

# The arguments and options several commands take, declared once (a command's own stay in its signature).
ModelArg = Annotated[str, Arg(help="trained pipeline directory or package name")]
CodeOpt = Annotated[
    Optional[Path],
    Opt(
        "--code", "-c", help="Python file with registered functions (custom components, architectures) to import first"
    ),
]
GpuOpt = Annotated[int, Opt("--gpu-id", "-g", help="GPU to run on, -1 for the CPU")]
OverwriteOpt = Annotated[bool, Opt("--overwrite", help="replace an existing output (or a partial one)")]
ComponentOpt = Annotated[
    Optional[str], Opt("--component", help="the wnut_ner component's name (default: the pipeline's one wnut_ner)")
]
BatchSizeOpt = Annotated[int, Opt("--batch-size", min=1, help="docs per batch")]
NoProgressOpt = Annotated[bool, Opt("--no-progress", help="hide the progress bar")]
MinScoreOpt = Annotated[
    Optional[float],
    Opt(
        "--min-score",
        min=0.0,
        max=1.0,
        help="drop entities whose probability is below this (0 to 1; default: the pipeline's min_score)",
    ),
]
EngineOpt = Annotated[
    Optional[str],
    Opt("--engine", help="inference engine: torch, onnx, onnx-int8, torch-int8 (default: the pipeline's)"),
]


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


def console(*outputs) -> TextIO:
    """Where a command's summary goes: stderr when one of its outputs is stdout (`-`, `/dev/stdout`), else stdout."""
    from ..data.outputs import is_stdout

    return sys.stderr if any(is_stdout(output) for output in outputs if output is not None) else sys.stdout


def import_code(code: Optional[Path]) -> None:
    """`--code`: import a Python file with registered functions (custom components, architectures), as spaCy does."""
    if code is None:
        return
    if not Path(code).is_file():
        raise ConfigError(f"--code {code}: no such file")
    from spacy.util import import_file

    import_file("python_code", code)


def use_gpu(gpu_id: int) -> None:
    """`--gpu-id`: run on that GPU (-1: the CPU), as `spacy evaluate` does."""
    if gpu_id < 0:
        return
    from thinc.api import require_gpu

    try:
        require_gpu(gpu_id)
    except ValueError as err:
        raise ConfigError(f"--gpu-id {gpu_id}: {err}") from None


def given(ctx: typer.Context, options: Dict[str, str]) -> List[str]:
    """Which of `options` (parameter name -> option as spelled) were given on the command line."""
    sources = {name: ctx.get_parameter_source(name) for name in options}
    return [flag for name, flag in options.items() if sources[name] is not None and sources[name].name != "DEFAULT"]
