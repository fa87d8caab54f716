#!/usr/bin/env bash
# Installs what gru_cuda needs and builds its extension in place (incremental: a
# rebuild compiles only what changed). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt
start=$(date +%s)
python setup.py -q build_ext --inplace
echo "gru_cuda: extension built in $(( $(date +%s) - start )) s"
