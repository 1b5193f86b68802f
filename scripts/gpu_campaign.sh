#!/usr/bin/env bash
# GTL at the paper's scale in one GPU call: VGG11 evolved on CIFAR-FS, few-shot evaluation against the baselines,
# descendants, the throughput table and the timing split; everything in $OUT (summary.md, campaign.json, one JSON
# per phase, the run directory). The phases are in scripts/gpu_campaign.py.
#
#   bash scripts/gpu_campaign.sh                 # on the GPU machine (device tool: carry [".whl", "data"])
#   bash scripts/gpu_campaign.sh --cpu-dry-run   # tiny sizes on the CPU, every phase (tests/test_gpu_campaign.py)
#
# Before the GPU call, here: `python scripts/make_cifar_fs_subset.py` (data/cifar-fs-subset.npz, ~46 MiB, ignored
# by git) and the pydantic wheels in .whl/ as scripts/gpu_check.sh's header says.
#
# Budget on an H100 (docs/gpu.md: ~5 s per VGG11 generation at population 32 and 100 steps; the first
# generation ~60 s with compiling and cuDNN autotuning). Limits per phase below, 9 minutes in all:
#   data            5 s   (the subset is carried; made here from ../shared only when missing)
#   evolve        210 s   (60 s + 29 x 5 s; 6.1M lifetime images)
#   pretrain       60 s   (the same 6.1M images, batch 512, bf16: ~12,000 steps)
#   bench          90 s   (VGG11 and Conv-4 at P = 16 and 64, eager and compiled: the compiles dominate)
#   eval           65 s   (5 methods x 1/5-shot x 20 episodes x 100 fine-tuning steps)
#   descendants    75 s   (3 descendants x learngene and scratch x 1/5-shot x 20 episodes)
# Fine-tuning runs one episode after another: at ~3 ms per VGG11 step, ~0.3 s an episode. So within one call
# eval and descendants run 20 episodes each (EPISODES=20 below); the 200 episodes take ~10 minutes for
# eval and ~12 for descendants: run them in further calls, `EPISODES=200 bash scripts/gpu_campaign.sh eval`
# and `... descendants` (the other phases' JSON stay in $OUT and the summary takes them all).
set -o pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_campaign}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ "${1:-}" = "--cpu-dry-run" ]; then
  shift
  exec "$PY" scripts/gpu_campaign.py --cpu-dry-run --phase all --out "$OUT" "$@"
fi
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import pydantic" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} || exit 1
fi
EPISODES=${EPISODES:-20}
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
nvidia-smi dmon -s um -d 1 > "$OUT/dmon.txt" 2>&1 &
DMON=$!
trap 'kill $DMON 2>/dev/null' EXIT
phase() {  # phase NAME LIMIT [ARGS...]
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s, at ${SECONDS}s)"
  timeout "$limit" "$PY" scripts/gpu_campaign.py --phase "$name" --out "$OUT" "$@" 2>&1 | tee "$OUT/$name.log"
}
if [ $# -gt 0 ]; then  # only the named phases (e.g. eval descendants with more episodes), then the summary
  for p in "$@"; do phase "$p" 590 --episodes "$EPISODES"; done
  phase summary 30
  exit 0
fi
phase data 20
phase evolve 230
phase pretrain 70
phase bench 90
phase eval 70 --episodes "$EPISODES"
phase descendants 80 --episodes "$EPISODES"
phase summary 20
echo "=== done at ${SECONDS}s"
