#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (CPU, plus CUDA when a GPU is present):
# the library's tests and the NER example's, whose packages it installs too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python -m pip install -q -r examples/ner/build-requirements.txt
python -m pip install -q --no-build-isolation -r examples/ner/requirements.txt
python -m pytest -q "$@"
