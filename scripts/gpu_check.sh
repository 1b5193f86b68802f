#!/usr/bin/env bash
# Every GPU check of the project in one call of a lent GPU machine (H100/H200, its own torch, no registry).
# The device image lacks pydantic: carry its wheels in .whl/ (ignored by git), made here with
#   echo /.whl/ >> .git/info/exclude
#   for p in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5; do
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$p"; done
# then run (device tool): command "bash scripts/gpu_check.sh", carry [".whl"], timeout_s 600.
# Phases in order of importance, each with its own time limit (about 9 minutes in all); each writes to $OUT.
set -o pipefail
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
T0=$SECONDS
phase() { echo; echo "=== $1 (at ${SECONDS}s)"; }
phase "device"
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"
nvidia-smi dmon -s u -d 1 > "$OUT/dmon.txt" 2>&1 &
DMON=$!
phase "gpu tests"
timeout 80 python3 -m pytest -q -m gpu -p no:cacheprovider -o addopts="" \
  tests/engine/test_population_equivalence.py tests/engine/test_learngene.py 2>&1 | tee "$OUT/gpu-tests.txt"
phase "end to end: VGG11, population 32, compiled, 3 generations then one more (resume)"
timeout 120 python3 scripts/gpu_e2e.py /tmp/e2e 3 2>&1 | tee "$OUT/e2e.txt"
kill $DMON 2>/dev/null
phase "bench P=64"
timeout 200 python3 -m engine.benchmarks.bench --models vgg11,conv4 --population 64 2>&1 | tee "$OUT/bench64.txt"
phase "bench P=16"
timeout 120 python3 -m engine.benchmarks.bench --population 16 2>&1 | tee "$OUT/bench16.txt"
phase "profile"
timeout 40 python3 scripts/gpu_profile.py vgg11 64 2>&1 | tee "$OUT/profile.txt"
phase "done"
