"""A pipeline component for the server's tests, loaded with `spacy wnut serve --code tests/tools/serve_hooks.py`.

It passes docs through, except on marker texts:
- `RAISE`: raises, as a pipeline that fails on one input would;
- `HOLD:name`: touches `$SERVE_HOOKS_DIR/name.held`, then waits (in the server's worker thread) until
  `$SERVE_HOOKS_DIR/name.release` exists (at most `$SERVE_HOOKS_WAIT_SECONDS`, 30 by default), so that a
  test knows a batch is running and decides when it ends.
With `$SERVE_HOOKS_LOAD_GATE` set, making the component waits until that file exists (a slow model load).
"""

import os
import re
import time
from pathlib import Path

from spacy.language import Language

WAIT_SECONDS = float(os.environ.get("SERVE_HOOKS_WAIT_SECONDS", "30"))


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {WAIT_SECONDS} s")
        time.sleep(0.01)


class Hooks:
    def __call__(self, doc):
        if "RAISE" in doc.text:
            raise RuntimeError("serve_test_hooks raised on its marker text")
        held = re.search(r"HOLD:(\w+)", doc.text)
        if held:
            folder = Path(os.environ["SERVE_HOOKS_DIR"])
            (folder / f"{held.group(1)}.held").touch()
            wait_for(folder / f"{held.group(1)}.release")
        return doc


@Language.factory("serve_test_hooks")
def make_hooks(nlp: Language, name: str) -> Hooks:
    gate = os.environ.get("SERVE_HOOKS_LOAD_GATE")
    if gate:
        wait_for(Path(gate))
    return Hooks()
