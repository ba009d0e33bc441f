"""Command line: `spacy wnut COMMAND ...` (spaCy's own CLI, through the `spacy_cli` entry point) or
`python -m spacy_wnut COMMAND ...`. One module per command or group of commands, each a thin wrapper
over a library function; the options several commands share are declared once in `_util.py`, and
what the library returns is printed by `printers.py`. `_util.py` says how errors end a command.
"""

import sys
from typing import List, Optional

import typer

from . import annotate, annotation, data, evaluate, hf, package, serve, train  # noqa: F401  (register the commands)
from ._util import app, user_errors

__all__ = ["app", "main", "user_errors"]


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
