"""`python -m spacy_wnut COMMAND ...`: the same commands as `spacy wnut COMMAND ...` (see `cli/`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
