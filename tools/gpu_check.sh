#!/usr/bin/env bash
# The accelerator check of issue #14, in one run: the engine's tests on the GPU, the bench's GPU rows,
# the real-size runs (and TRiC with every step on the full grid), and a short table last.
# For the device machine (Python 3.12 with a CUDA torch
# and numpy 2, no ChimeraX, no package registry): the engine is imported from engine/ as
# cryotrans_engine without the bundle; mrcfile, which is missing there, travels as a wheel in
# .whl/, and the real-size pairs are built there from the two structure files of `make realsize`
# (31 MB; carry them).  Prepared here with:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl mrcfile==1.5.4
#   make realsize
# and run there (the device tool's carry: .whl, data/realsize/mmcif_6zu5.cif, data/realsize/pdb4v8r_h36.pdb) as:
#   bash tools/gpu_check.sh
# To try it on a CPU:  DEVICE=cpu SIZES=32,48 REAL=tric_160 REAL_ARGS='--steps 20 --refine 5' W2=10 bash tools/gpu_check.sh
# (DATA: the pairs' folder, default data/realsize; TESTS: the test files to run, default the engine's;
# tests/test_gpu_check.py runs it so on small stand-in maps.)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-64,128,160,256}
REAL=${REAL:-ribosome_256}
W2=${W2:-2000}
REAL_ARGS=${REAL_ARGS:-}
DATA=${DATA:-data/realsize}
LOG=${OUT:-/tmp/gpu_check}
mkdir -p "$LOG"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! $PY -c 'import cryotrans_engine' 2>/dev/null; then    # not installed: the engine's folder as it is
    export PYTHONPATH=$PWD/engine${PYTHONPATH:+:$PYTHONPATH}
fi
$PY -c 'import sys, numpy, torch; print("python", sys.version.split()[0], "numpy", numpy.__version__, "torch",
    torch.__version__, "cuda", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")' \
    | tee "$LOG/versions.txt"
ENGINE_TESTS="tests/test_splat_flow.py tests/test_wasserstein.py tests/test_training.py tests/test_refinement.py
    tests/test_fsc.py tests/test_levels.py tests/test_partition.py tests/test_verdict.py tests/test_maps.py
    tests/test_budget.py tests/test_hinge.py tests/test_schedule.py"
timeout 100 $PY -m pytest -q -p no:cacheprovider ${TESTS:-$ENGINE_TESTS} 2>&1 | tee "$LOG/tests.txt" | tail -15
timeout 45 $PY tools/bench.py --device "$DEVICE" --sizes "$SIZES" --sections speed,split,memory --repeat 3 \
    2>&1 | tee "$LOG/bench.txt"
if ! ls "$DATA/${REAL}_moved_mask.mrc" "$DATA/tric_160_moved_mask.mrc" >/dev/null 2>&1; then
    timeout 90 $PY tools/realsize_maps.py --out "$DATA" 2>&1 | tail -4 | tee "$LOG/maps.txt"
fi
real() {   # one real_size.py run: its time limit, its log's name, its arguments
    local limit=$1 log=$2; shift 2
    timeout "$limit" $PY tools/real_size.py --data "$DATA" --device "$DEVICE" "$@" 2>&1 | tee "$LOG/$log.txt"
}
real 90 real --pair "$REAL" $REAL_ARGS
real 30 tric --pair tric_160 $REAL_ARGS
# the 160³ comparison: every step on the full grid, refinement's too, every particle (hours on 2 CPU cores)
real 120 tric_all --pair tric_160 --bin-all $REAL_ARGS
real 30 w2 --pair tric_160 --w2-steps "$W2"
real 45 w2_all --pair tric_160 --w2-steps "$W2" --particles 0
said() {   # the lines of file $1 matching $2, on one line; else that it has none (a run cut off by its timeout)
    local found
    found=$(grep -E "$2" "$1" | tr '\n' ' ')
    if [ -n "$found" ]; then echo "$found"; else echo "none: timed out or failed, see $1"; fi
}
echo
echo "== gpu_check: $(cat "$LOG/versions.txt")"
echo "engine tests on $DEVICE: $(said "$LOG/tests.txt" '[0-9]+ (passed|failed|error)')"
echo "bench full-grid step s (box, particles, step s, MLP s, splat s, loss s, rest s, refine s):"
awk '/^full-grid step/ {on=1} on && /³/ {print "   " $0} /^$/ {on=0}' "$LOG/bench.txt"
echo "bench memory (box, particles, peak GB, estimate GB, ratio):"
awk '/^peak memory/ {on=1} on && /³/ {print "   " $1, $2, $3, $4, $5} /^$/ {on=0}' "$LOG/bench.txt"
echo "real size $REAL, the target's resolution given, default schedule:"
sed 's/^/   /' "$LOG/real.txt"
for f in tric tric_all; do
    echo "tric 160³, $([ $f = tric ] && echo 'default schedule' || echo 'every step on the full grid'): \
$(said "$LOG/$f.txt" '^(ran|step_s|start_to_prediction_s|fsc_prediction_masked_A) ')"
done
for f in w2 w2_all; do
    echo "tric 160³, full-grid W2 steps alone, $(said "$LOG/$f.txt" '^w2_particles'): $(said "$LOG/$f.txt" '^w2_steps')"
done
