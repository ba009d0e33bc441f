"""The WNUT 17 files: canonical URLs and checksums, fetched from a local mirror or the web."""

import hashlib
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

from wasabi import msg

from ..errors import InputError, OutputError


@dataclass(frozen=True)
class Asset:
    """One data file: where it lives on the web and what its bytes hash to."""

    filename: str
    url: str
    sha256: str


_BASE = "https://raw.githubusercontent.com/leondz/emerging_entities_17/master/"
WNUT17_ASSETS: Dict[str, Asset] = {
    "train": Asset(
        "wnut17train.conll",
        _BASE + "wnut17train.conll",
        "731820e13f71af324c6b55a1575ec2ce59fbaa2a0806f8f0400b98d56cd6a7a5",
    ),
    "dev": Asset(
        "emerging.dev.conll",
        _BASE + "emerging.dev.conll",
        "e053b752b8155113ca66e7db08af5f2f5f43ab993694e4774f1ec5bad42312d8",
    ),
    "test": Asset(
        "emerging.test.annotated",
        _BASE + "emerging.test.annotated",
        "2aa79b764e56ec9264a1b30fdd9b70195bd00ff400b62edd8f399d5f13c178f0",
    ),
}


def sha256sum(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(path: Path) -> str:
    """The hex sha256 of a directory's files: each file's relative path and content sha256, in order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256sum(file)}\n".encode("utf-8"))
    return digest.hexdigest()


def fetch_asset(asset: Asset, dest_dir: Path, mirror: Optional[Path] = None) -> Path:
    """Put `asset` in `dest_dir`, verified: kept if already there, else copied from
    `mirror` if it holds the file, else downloaded from its URL."""
    dest = dest_dir / asset.filename
    if dest.is_file() and sha256sum(dest) == asset.sha256:
        msg.info(f"{dest} is up to date")
        return dest
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.touch()
    except OSError as err:
        problem = "is a file, not a folder" if isinstance(err, (FileExistsError, NotADirectoryError)) else None
        raise OutputError(
            f"{dest_dir}: cannot write the WNUT 17 files there ({problem or err.strerror or err})"
        ) from None
    if mirror is not None and (mirror / asset.filename).exists():
        origin = str(mirror / asset.filename)
        shutil.copyfile(mirror / asset.filename, tmp)
    else:
        origin = asset.url
        try:
            with urllib.request.urlopen(asset.url, timeout=60) as response, tmp.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, TimeoutError) as err:
            tmp.unlink(missing_ok=True)
            raise InputError(
                asset.url, f"cannot download it ({err}); put a copy in a folder named by --mirror"
            ) from None
    found = sha256sum(tmp)
    if found != asset.sha256:
        tmp.unlink()
        raise InputError(origin, f"sha256 is {found}, expected {asset.sha256}; the file is not the official one")
    tmp.replace(dest)
    msg.good(f"{origin} -> {dest}")
    return dest


def fetch_wnut17(dest_dir: Union[str, Path], mirror: Union[str, Path, None] = None) -> Dict[str, Path]:
    """Fetch the three WNUT 17 splits into `dest_dir`; returns split -> path."""
    mirror_path = Path(mirror) if mirror else None
    if mirror_path is not None and not mirror_path.is_dir():
        msg.warn(f"mirror {mirror_path} is not a directory; downloading from the canonical URLs")
        mirror_path = None
    return {split: fetch_asset(asset, Path(dest_dir), mirror_path) for split, asset in WNUT17_ASSETS.items()}
