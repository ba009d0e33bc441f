"""How pip resolves the package's install as a new user meets it: a fresh venv, no pip cache.

    python bench/install.py OUT_STEM [--rev REV[:EXTRA] ...]

For each git revision (default: HEAD with its `train` extra; `REV:` for no extra) it exports the tree,
creates a venv, runs the README's way in
(`pip install torch==2.13.0`, then `pip install -e '.[EXTRA]'`, both `--no-cache-dir`), and records the
seconds, the wheels pip downloaded (and how many of them were transformers), and the size of
site-packages. Revisions are measured one after the other in one run. Writes OUT_STEM.json / .md.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parents[1]


def measure(rev: str, extra: str, work: Path) -> Dict:
    tree = work / f"tree-{rev}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    env_dir = work / f"venv-{rev}"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check"]
    start = time.perf_counter()
    log = ""
    for command in ([*pip, "torch==2.13.0"], [*pip, "-e", f".[{extra}]" if extra else "."]):
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
        log += done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"{rev}: {' '.join(command)} failed:\n{log[-3000:]}")
    seconds = time.perf_counter() - start
    downloads = re.findall(r"Downloading (\S+?\.(?:whl|tar\.gz))", log)
    (site,) = env_dir.glob("lib/python*/site-packages")
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())
    return {
        "rev": rev,
        "extra": extra,
        "seconds": seconds,
        "downloads": len(downloads),
        "transformers_downloads": sum(d.startswith("transformers-") for d in downloads),
        "site_packages_mb": size / 1e6,
        "installed": re.findall(r"Successfully installed (.*)", log)[-1].split(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rev", action="append", help="REV[:EXTRA] to measure (default HEAD:train)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-install-"))
    try:
        revs = [item.partition(":")[::2] if ":" in item else (item, "train") for item in args.rev or ["HEAD"]]
        rows = [measure(rev, extra, work) for rev, extra in revs]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    lines = [
        "# `pip install torch==2.13.0 && pip install -e '.[EXTRA]'` in a fresh venv, --no-cache-dir",
        "",
        f"Python {sys.version.split()[0]}",
        "",
        "| revision | extra | seconds | wheels downloaded | of them transformers | site-packages MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rev']} | {r['extra'] or '-'} | {r['seconds']:.0f} | {r['downloads']} | "
            f"{r['transformers_downloads']} | {r['site_packages_mb']:.0f} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
