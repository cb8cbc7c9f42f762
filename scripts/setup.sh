#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the toolkit with the exact, tested set of dependencies.
# Usage: bash scripts/setup.sh [extras]   (default extras: torch,test)
# Idempotent: a second run only checks that everything is installed. pip's wheel cache
# (~/.cache/pip) keeps the ~800 MB mindspore wheel between runs. pip runs with -qq: its warnings and the
# build backend's (setuptools' "editable installation" notice, index locations it skips) are left out;
# its errors still show, and any failure stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-torch,test}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
"$py" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, got {sys.version}"'
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -qq --upgrade "pip>=24"
  .venv/bin/python -m pip install -qq -c constraints.txt -e ".[${extras}]"
  # Upstream YOLOv5 v7.0 is only the reference the tests compare against: no dependencies
  # (its requirements would pull torchvision and a CUDA torch).
  if [[ ",${extras}," == *",test,"* ]]; then
    .venv/bin/python -m pip install -qq --no-deps -c constraints.txt yolov5==7.0.14
    # timm's and ultralytics' multi-epoch loaders, run by tests/adapters/test_third_party.py from their own
    # wheels: installed, they would import torchvision (a CUDA build on this index that fails on CPU torch).
    .venv/bin/python -m pip download -qq --no-deps -d .venv/third_party timm==1.0.31 ultralytics==8.4.190
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
.venv/bin/python -m porting env
