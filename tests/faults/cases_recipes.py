"""Fault cases of the recipe scripts' own checks (scripts/launch_training.sh)."""

from tests.faults.harness import FaultCase, recipe
from tests.support.models import write_smollm2_config

CASES = [
    FaultCase(
        # SmolLM2's config without weights: a refusal that came from loading the model would read differently.
        name="real model at the GPU recipe's batch and block on a CPU",
        area="settings",
        command=recipe("train_baseline"),
        env={"MODEL_PATH": "{tmp}/model", "OUTDIR": "{tmp}/out"},
        setup=lambda tmp, tiny: write_smollm2_config(tmp / "model"),
        cause=r"^error: this run needs about 1\d\d\.\d GiB, most of it activations .*: lower TRAIN_BSZ "
        r"\(--per_device_train_batch_size\) or BLOCK_SIZE \(--block_size\)",
    )
]
