#!/usr/bin/env bash
# The GPU check of issue 24 in one call of the device tool (what it checks: bench/gpu_check.py). Here, first:
#   bash bench/fetch_gpu_wheels.sh          # the pinned stack into ./.whl (19 MB; ignored by git)
# then one call:  run(command="GPU_CHECK_COMMIT=<sha> bash bench/gpu_check.sh", carry=[".whl"], timeout_s=540)
# It installs .whl/ over the image's packages (into a folder first on PYTHONPATH), runs every stage within
# GPU_CHECK_BUDGET_S seconds (default 420, the call's 8 minutes less the install), and writes
# $OUT/gpu_check.json (card, date, commit, every figure) and $OUT/gpu_check.log.
# GPU_CHECK_TINY=1: tiny shapes and few steps on the installed stack (no wheels installed), the CPU smoke test of
# this script (tests/bench/test_gpu_check.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-./outputs/gpu_check}"
mkdir -p "$OUT"
PYTHON="$(command -v python3 || command -v python)"
tiny=()
[ "${GPU_CHECK_TINY:-0}" = 1 ] && tiny=(--tiny)
if [ -z "${tiny[*]}" ]; then
  compgen -G ".whl/*.whl" >/dev/null || { echo "no wheels in .whl/: run bash bench/fetch_gpu_wheels.sh first" >&2; exit 2; }
  SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  # DeepSpeed ships no wheel: built here against the image's torch (no ops ahead of time).
  "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target "$SITE" \
    .whl/deepspeed-*.tar.gz
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's library, not an installed one
# The recipes call `python` and `torchrun`: both the interpreter that holds torch (an image may have python3 only).
SHIMS="$(mktemp -d)"
ln -s "$PYTHON" "$SHIMS/python"
printf '#!/usr/bin/env bash\nexec %s -m torch.distributed.run "$@"\n' "$PYTHON" > "$SHIMS/torchrun"
chmod +x "$SHIMS/torchrun"
export PATH="$SHIMS:$PATH" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$PYTHON" bench/gpu_check.py --output "$OUT/gpu_check.json" --budget-s "${GPU_CHECK_BUDGET_S:-420}" \
  --work "${GPU_CHECK_WORK:-/tmp/gpu_check}" "${tiny[@]}" "$@" 2>&1 | tee "$OUT/gpu_check.log"
