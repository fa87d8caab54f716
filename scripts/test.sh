#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (CPU, plus CUDA when a GPU is present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python -m pytest -q "$@"
