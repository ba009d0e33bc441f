#!/usr/bin/env bash
# Build (once) and print the Python of a venv that holds Label Studio's own code, beside this
# project's env: Label Studio pins many packages of its own, so it never goes into the project's env.
#
#   tests/tools/label_studio_venv.sh sdk      # label-studio-sdk: its converter and labeling-config checks
#   tests/tools/label_studio_venv.sh server   # label-studio: the annotation server itself
#
# The venvs live under $SPACY_WNUT_TOOL_VENVS (default ~/.cache/spacy-wnut/tool-venvs); a venv is
# used only once its build finished (the .complete marker), so a broken build is started again.
# Pin other versions with LABEL_STUDIO_SDK_SPEC / LABEL_STUDIO_SPEC. Exit status 3: could not build.
set -euo pipefail
kind="${1:-sdk}"
case "$kind" in
  sdk) spec="${LABEL_STUDIO_SDK_SPEC:-label-studio-sdk>=1.0,<3}"; probe="import label_studio_sdk.converter" ;;
  server) spec="${LABEL_STUDIO_SPEC:-label-studio>=1.13,<2}"; probe="import label_studio" ;;
  *) echo "usage: $0 sdk|server" >&2; exit 2 ;;
esac
root="${SPACY_WNUT_TOOL_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/spacy-wnut/tool-venvs}"
venv="$root/label-studio-$kind"
python="${PYTHON:-python3}"
if [ -f "$venv/.complete" ] && "$venv/bin/python" -c "$probe" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi
rm -rf "$venv"
mkdir -p "$root"
{
  "$python" -m venv "$venv" &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 2 --timeout 30 "$spec" &&
    "$venv/bin/python" -c "$probe"
} >"$root/label-studio-$kind.log" 2>&1 || {
  echo "could not build the $kind venv with pip install '$spec' (log: $root/label-studio-$kind.log)" >&2
  exit 3
}
"$venv/bin/python" -m pip freeze >"$venv/.complete"
echo "$venv/bin/python"
