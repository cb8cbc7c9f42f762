#!/usr/bin/env bash
# Set up (see setup.sh) and run the main job: the side-by-side equivalence demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh torch,test
exec .venv/bin/python -m porting demo "$@"
