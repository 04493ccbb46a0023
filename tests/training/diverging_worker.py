"""``scripts.run_clm_lora`` under torchrun (test_safety.py), with two test probes: the loss of one rank's
training forward made infinite (``INF_ON_RANK``/``INF_AT_CALL``: the gradient stays finite, so only that rank
sees it), and ``rank{r}.json`` in ``PROBE_DIR``: the step each rank stopped at and its exit code."""

import json
import os
import sys
from pathlib import Path

from scripts.run_clm_lora import main
from transformers_align.modeling.aligned import AlignedCausalLMMixin
from transformers_align.training.safety import TrainingDiverged

RANK = int(os.environ["RANK"])
forward, calls = AlignedCausalLMMixin.forward, []


def forward_with_an_infinite_loss(self, *args, **kwargs):
    outputs = forward(self, *args, **kwargs)
    calls.append(self.training)
    chosen = RANK == int(os.environ.get("INF_ON_RANK", -1)) and sum(calls) == int(os.environ.get("INF_AT_CALL", 0))
    if self.training and chosen:
        name = "task_loss" if outputs.task_loss is not None else "alignment_loss"
        setattr(outputs, name, getattr(outputs, name) + float("inf"))  # a constant: the gradient is unchanged
        outputs.loss = outputs.loss + float("inf")
    return outputs


def record(code, step=None):
    Path(os.environ["PROBE_DIR"], f"rank{RANK}.json").write_text(json.dumps({"exit": code, "step": step}))


if __name__ == "__main__":
    AlignedCausalLMMixin.forward = forward_with_an_infinite_loss
    original_init = TrainingDiverged.__init__

    def recording_init(self, step, what, args):  # written at once: torchrun ends the other ranks at the first exit
        record(None, step)
        original_init(self, step, what, args)

    TrainingDiverged.__init__ = recording_init
    try:
        main(sys.argv[1:])
    except SystemExit as stop:
        step = json.loads(Path(os.environ["PROBE_DIR"], f"rank{RANK}.json").read_text())["step"]
        record(stop.code, step)
        raise
    record(0)
