"""What the recipe launches on a GPU machine, read on this CPU one: a stand-in ``python`` answers the launcher's GPU
probe ("N GPUs, bf16 supported") and records the command line of the recipe's torchrun
(``python -m transformers_align.training.torchrun``) instead of training."""

import shutil
import subprocess
import sys

from tests.support import REPO
from tests.support.processes import cpu_env

RUN_MODULE = "scripts.run_clm_lora"
TORCHRUN_MODULE = "transformers_align.training.torchrun"


def gpu_branch_arguments(tmp_path, model_dir, gpus=4, script="train_with_alignment.sh", **variables):
    """The run_clm_lora arguments ``bash scripts/<script>`` gives torchrun on a machine with ``gpus`` GPUs."""
    bin_dir, record = tmp_path / "bin", tmp_path / "torchrun_argv"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "$1" = -c ] && [[ "$2" == *torch.cuda.is_available* ]]; then echo "{gpus} 1"; exit 0; fi\n'
        f'if [ "$1" = -m ] && [ "$2" = {TORCHRUN_MODULE} ]; then shift 2; printf "%s\\n" "$@" > {record}; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    (bin_dir / "python").chmod(0o755)
    env = cpu_env(MODEL_PATH=str(model_dir), OUTDIR=str(tmp_path / "out"), **variables)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    argv = record.read_text().splitlines()
    shutil.rmtree(bin_dir)
    return argv[argv.index(RUN_MODULE) + 1 :], result.stdout, argv[: argv.index(RUN_MODULE)]
