#!/usr/bin/env bash
# Download the pinned stack that bench/gpu_check.sh installs on the GPU machine into ./.whl (ignored by git; the
# device tool carries it: `carry: [".whl"]`). That machine's image has Python 3.12, a CUDA torch 2.11 and
# transformers 5.x; this library is pinned to transformers 4.43.4, so the packages below replace the image's.
# Versions: the ones the suite passes with here (pip list), so the GPU check runs the tested stack.
# The image's own accelerate, safetensors, numpy, pyarrow, pandas, fsspec, xxhash, psutil, ninja, py-cpuinfo,
# msgpack, nvidia-ml-py, einops and pyyaml are used as they are. DeepSpeed has no wheel: its source is fetched
# and gpu_check.sh builds it there (no ops compiled ahead; DeepSpeed compiles what it needs when first used).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHEELS="${WHEELS:-.whl}"
mkdir -p "$WHEELS"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
download() { python3 -m pip download -q --no-deps -d "$WHEELS" "$@"; }
download --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
  transformers==4.43.4 tokenizers==0.19.1 huggingface-hub==0.36.2 peft==0.15.2 datasets==5.0.1 \
  dill==0.4.1 multiprocess==0.70.19 hjson==3.1.0 pydantic==2.13.4 pydantic-core==2.46.4 \
  annotated-types==0.7.0 typing-inspection==0.4.2
download --no-binary=:all: deepspeed==0.19.8
du -sh "$WHEELS"
ls "$WHEELS"
