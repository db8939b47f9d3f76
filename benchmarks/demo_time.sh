#!/usr/bin/env bash
# Wall time of `make demo` on a fresh clone: the set-up (venv + install) and the demo itself, apart.
#   bash benchmarks/demo_time.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir="$(mktemp -d)/steplens"
git clone -q "$src" "$dir"
cd "$dir"
t0=$(date +%s.%N)
make .venv/bin/.steplens-installed > setup.log 2>&1
t1=$(date +%s.%N)
make demo > demo.log 2>&1
t2=$(date +%s.%N)
tail -n 3 demo.log
python3 -c "print(f'set-up: {$t1 - $t0:.1f} s   demo after set-up: {$t2 - $t1:.1f} s   (fresh clone in $dir)')"
