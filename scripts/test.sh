#!/usr/bin/env bash
# Set up (see setup.sh) and run the whole default test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh torch,test
exec .venv/bin/python -m pytest "$@"
