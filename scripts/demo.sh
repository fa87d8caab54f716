#!/usr/bin/env bash
# The main job: set up, build, then a short parity check and benchmark against nn.GRU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python benchmarks/bench_gru.py --quick "$@"
