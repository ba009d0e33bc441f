"""Shared fixtures: the WNUT 17 mirror (skipped with a reason where absent) and small files."""
import os
from pathlib import Path

import pytest

MIRROR = Path(os.environ.get("WNUT17_MIRROR", Path(__file__).parents[1].parent / "shared" / "wnut17"))


@pytest.fixture(scope="session")
def wnut_mirror() -> Path:
    """The local copy of the official WNUT 17 files."""
    if not (MIRROR / "wnut17train.conll").exists():
        pytest.skip(f"WNUT 17 mirror not found at {MIRROR} (set WNUT17_MIRROR to its directory)")
    return MIRROR


@pytest.fixture
def write_conll(tmp_path):
    """Write bytes or text to a CoNLL file in a temporary directory and return its path."""

    def write(content, name: str = "data.conll") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write
