#!/usr/bin/env bash
# Issue 32/35's retraining, in order, resumable: every stage skips what is done.
#   1. tiny-reasoner on the training part (configs/tiny-reasoner-heldout.json; resumes runs/tiny-reasoner-heldout)
#   2. export it as the shipped tiny-reasoner (float16 EMA weights; weights/sha256.json updated)
#   3. in parallel, one core each: the frame-prefix fine-tune (configs/tiny-reasoner-frames.json, from the exported
#      tiny-reasoner) and the 4-step
#      student redistilled from the new tiny-reasoner (configs/distill/tiny-reasoner-4step.json, to --distill-steps)
#   bash benchmarks/retrain_chain.sh [--distill-steps 1050]   (logs: runs/*.log)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DISTILL_STEPS=1050  # the shipped student: symmetry-open still rose from step 300 (0.487) to 1,050 (0.570) on 300 samples
[ "${1:-}" = "--distill-steps" ] && DISTILL_STEPS=$2
export OMP_NUM_THREADS=1
last_step() { tail -n 1 "$1/log.jsonl" 2>/dev/null | $PY -c "import json,sys; print(json.loads(sys.stdin.read() or '{}').get('step', 0))"; }

# 1. the retraining (a run already going is waited for; a fresh clone starts from the committed state)
if [ ! -f runs/tiny-reasoner-heldout/checkpoint.safetensors ]; then
  mkdir -p runs/tiny-reasoner-heldout && cp benchmarks/training-state/tiny-reasoner-heldout/* runs/tiny-reasoner-heldout/
fi
while pgrep -f "cli train --out runs/tiny-reasoner-heldout" >/dev/null; do sleep 60; done
if [ "$(last_step runs/tiny-reasoner-heldout)" -lt 8000 ]; then
  $PY -m steplens.cli train --out runs/tiny-reasoner-heldout --config configs/tiny-reasoner-heldout.json --threads 1 \
    > runs/tiny-reasoner-heldout.log 2>&1
fi
# 2. the shipped tiny-reasoner
$PY -m steplens.cli export --checkpoint runs/tiny-reasoner-heldout/checkpoint.safetensors \
  --out src/steplens/weights/tiny-reasoner.safetensors \
  --command "steplens train --out runs/tiny-reasoner-heldout --config configs/tiny-reasoner-heldout.json --threads 1"
$PY - <<'PY'
import hashlib, json, pathlib
d = pathlib.Path("src/steplens/weights")
sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.glob("*.safetensors"))}
(d / "sha256.json").write_text(json.dumps(sums, indent=1) + "\n")
PY
# 3. the frame-prefix fine-tune (from the exported tiny-reasoner) and the redistilled student, side by side
while pgrep -f "cli train --out runs/tiny-reasoner-frames-2" >/dev/null; do sleep 60; done
if [ "$(last_step runs/tiny-reasoner-frames-2)" -lt 1000 ]; then
  $PY -m steplens.cli train --out runs/tiny-reasoner-frames-2 --config configs/tiny-reasoner-frames.json --threads 1 \
    > runs/tiny-reasoner-frames-2.log 2>&1 &
fi
$PY -m steplens.training.distill --out runs/tiny-reasoner-4step --config configs/distill/tiny-reasoner-4step.json \
  --steps "$DISTILL_STEPS" --threads 1 > runs/tiny-reasoner-4step.log 2>&1 &
wait
echo "done: export with steplens export (frames) and python -m steplens.training.distill --export (student)"
