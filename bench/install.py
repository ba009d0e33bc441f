"""How pip and uv resolve the package's install as a new user meets it: a fresh venv, no cache.

    python bench/install.py OUT_STEM [--rev REV[:EXTRA] ...] [--installer pip --installer uv] [--preload]

For each git revision (default: HEAD with its `train` extra; `REV:` for no extra) and installer it
exports the tree, creates a venv, runs the README's way in (`pip install torch==2.13.0`, then
`pip install -e '.[EXTRA]'`, both `--no-cache-dir`; or the same with `uv pip install --no-cache`),
and records the seconds, the wheels downloaded (and any package downloaded more than once: pip
backtracking), and the size of site-packages. With `--preload`, one more venv per revision first
gets the newest transformers, datasets and accelerate (as a user who already has them), then the
extra; every package whose version went down is listed (the goal: none). Runs one after the other
in one process. Writes OUT_STEM.json / .md.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]
PRELOAD = ("transformers", "datasets", "accelerate")
SHOWN = ("transformers", "huggingface-hub", "tokenizers", "datasets", "torch", "spacy-transformers")


def export_tree(rev: str, work: Path) -> Path:
    tree = work / f"tree-{rev}"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def installer_commands(installer: str, env_dir: Path) -> List[str]:
    """The install command prefix of `installer` for the venv `env_dir`, with no cache."""
    python = str(env_dir / "bin" / "python")
    if installer == "pip":
        return [python, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check"]
    # uv reads no pip.conf: pass on the find-links pip is configured with here (the CPU torch build).
    links = [f"--find-links={link}" for link in os.environ.get("PIP_FIND_LINKS", "").split()]
    return ["uv", "pip", "install", "--no-cache", "--python", python, *links]


def make_venv(installer: str, env_dir: Path) -> None:
    if installer == "pip":
        subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    else:
        subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(env_dir)], check=True)


def versions(env_dir: Path) -> Dict[str, str]:
    """name -> version of every distribution in the venv."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))"
    )
    done = subprocess.run([str(env_dir / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _run(command: List[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout + done.stderr


def measure(rev: str, extra: str, installer: str, work: Path, preload: bool = False) -> Dict:
    tree = export_tree(rev, work)
    env_dir = work / f"venv-{rev}-{installer}-{'preload' if preload else 'fresh'}"
    make_venv(installer, env_dir)
    install = installer_commands(installer, env_dir)
    log = _run([*install, "torch==2.13.0"], tree)
    before: Dict[str, str] = {}
    if preload:
        log += _run([*install, *PRELOAD], tree)
        before = versions(env_dir)
    start = time.perf_counter()
    log += _run([*install, "-e", f".[{extra}]" if extra else "."], tree)
    seconds = time.perf_counter() - start
    after = versions(env_dir)
    from packaging.version import Version

    downgraded = {
        name: f"{old} -> {after[name]}"
        for name, old in before.items()
        if name in after and Version(after[name]) < Version(old)
    }
    # pip names each wheel it downloads; uv counts what it prepared (downloaded and unpacked).
    downloads = re.findall(r"Downloading (\S+?\.(?:whl|tar\.gz))", log)
    per_package = Counter(re.sub(r"-\d.*", "", d).lower().replace("_", "-") for d in downloads)
    prepared = [int(n) for n in re.findall(r"Prepared (\d+) packages?", log)]
    (site,) = env_dir.glob("lib/python*/site-packages")
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())
    return {
        "rev": rev,
        "extra": extra,
        "installer": installer,
        "preload": preload,
        "seconds": seconds,
        "downloads": len(downloads) if installer == "pip" else sum(prepared),
        "downloaded_twice": sorted(name for name, n in per_package.items() if n > 1),
        "site_packages_mb": size / 1e6,
        "downgraded": downgraded,
        "preloaded": {name: before.get(name) for name in PRELOAD} if preload else {},
        "versions": {
            name: after.get(name)
            for name in ("transformers", "huggingface-hub", "tokenizers", "datasets", "torch", "spacy-transformers")
        },
    }


def markdown(rows: List[Dict]) -> str:
    lines = [
        "# `[EXTRA]` installed as a new user would: a fresh venv, no cache (torch==2.13.0 first)",
        "",
        f"Python {sys.version.split()[0]}; seconds: the extra's install alone (torch and any preloaded "
        "packages went in before it)",
        "",
        "| revision | extra | installer | venv | seconds | downloads | downloaded twice | site-packages MB "
        "| transformers | downgraded |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        venv = "with " + ", ".join(f"{k} {v}" for k, v in r["preloaded"].items()) if r["preload"] else "fresh"
        down = ", ".join(f"{k} {v}" for k, v in r["downgraded"].items()) or "none"
        lines.append(
            f"| {r['rev']} | {r['extra'] or '-'} | {r['installer']} | {venv} | {r['seconds']:.0f} | {r['downloads']} | "
            f"{', '.join(r['downloaded_twice']) or 'none'} | {r['site_packages_mb']:.0f} | "
            f"{r['versions']['transformers']} | {down} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rev", action="append", help="REV[:EXTRA] to measure (default HEAD:train)")
    parser.add_argument("--installer", action="append", choices=("pip", "uv"), help="default: pip")
    parser.add_argument(
        "--preload", action="store_true", help="also install into a venv holding the newest " + ", ".join(PRELOAD)
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-install-"))
    rows = []
    try:
        revs = [item.partition(":")[::2] if ":" in item else (item, "train") for item in args.rev or ["HEAD"]]
        for rev, extra in revs:
            for installer in args.installer or ["pip"]:
                rows.append(measure(rev, extra, installer, work))
                print(json.dumps(rows[-1]), flush=True)
                if args.preload:
                    rows.append(measure(rev, extra, installer, work, preload=True))
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args.out, rows, markdown(rows))


if __name__ == "__main__":
    main()
