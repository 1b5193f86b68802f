#!/usr/bin/env bash
# Every GPU check of the project in one call of a lent GPU machine (H100/H200, its own torch, no registry).
# The device image lacks pydantic: carry its wheels in .whl/ (ignored by git), made here with
#   echo /.whl/ >> .git/info/exclude
#   for p in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5; do
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$p"; done
# then run (device tool): command "bash scripts/gpu_check.sh", carry [".whl"], timeout_s 600.
set -o pipefail
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"
timeout 120 python3 -m pytest -q -m gpu -p no:cacheprovider tests/engine/test_population_equivalence.py \
  tests/engine/test_learngene.py 2>&1 | tee "$OUT/gpu-tests.txt"
# images/s: one after another, population eager/compiled, dense eager/compiled; Conv-4 and VGG11, P = 16, 64
timeout 420 python3 -m engine.bench 2>&1 | tee "$OUT/bench.txt"
