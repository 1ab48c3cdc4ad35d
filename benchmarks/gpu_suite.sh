#!/usr/bin/env bash
# Every GPU figure the performance docs quote: see benchmarks/gpu_suite.py -h.
#   bash benchmarks/gpu_suite.sh [--only STEPS] [--timeout SECONDS] ...
# --no-deps: pyproject.toml asks for plain jax/jaxlib; if the image's CUDA build were older than
# those bounds, pip would replace it with PyPI's CPU wheels. The image already has the other packages.
# Offline, the isolated build cannot fetch setuptools: then build with the installed one.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q --no-deps -e . 2>/dev/null || pip install -q --no-deps --no-build-isolation -e .
exec python benchmarks/gpu_suite.py "$@"
