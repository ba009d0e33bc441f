"""`fetch`, `convert`, `convert-hf`: the WNUT 17 files and corpora in spaCy's format."""

from pathlib import Path
from typing import Optional

from ._util import (
    Arg,
    NoProgressOpt,
    Opt,
    OverwriteOpt,
    app,
    console,
    user_errors,
)
from .printers import print_conversion


@app.command("fetch")
@user_errors
def fetch_cmd(
    dest: Path = Arg(..., help="directory to put the files in"),
    mirror: Optional[str] = Opt(None, "--mirror", help="local directory holding copies (used before the URLs)"),
) -> None:
    """Fetch the three WNUT 17 files, sha256-verified (kept if already there)."""
    from ..data.assets import fetch_wnut17

    fetch_wnut17(dest, mirror=mirror or None)


@app.command("convert")
@user_errors
def convert_cmd(
    input: Path = Arg(..., help="CoNLL file: TOKEN<TAB>TAG lines, IOB2"),
    output: Path = Arg(..., help="output .spacy file (replaced when complete), - for stdout"),
    n_sents: int = Opt(1, "--n-sents", min=1, help="sentences per doc"),
    strict: bool = Opt(False, "--strict", help="make repairs errors"),
    any_label: bool = Opt(False, "--any-label", help="accept any entity type, not only WNUT 17's six"),
    overwrite: OverwriteOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Convert WNUT-style CoNLL to a spaCy DocBin, reporting every repair."""
    from ..data.conll import WNUT17_LABELS
    from ..data.convert import convert_conll

    summary = convert_conll(
        input,
        output,
        n_sents=n_sents,
        labels=None if any_label else WNUT17_LABELS,
        strict=strict,
        progress=not no_progress,
        overwrite=overwrite,
    )
    print_conversion(summary, console(output))


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
    overwrite: OverwriteOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Convert a Hugging Face token-classification dataset to DocBins."""
    from ..data.convert import convert_hf_dataset
    from ..errors import require

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
