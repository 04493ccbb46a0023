"""The training process itself: which device, how many processes, and no noise a user cannot act on.

transformers 4.43.4 picks the device while parsing ``TrainingArguments`` (``_setup_devices``): under
torchrun on a machine without GPU, accelerate's ``PartialState`` only forms a (gloo) process group when
``use_cpu`` is set, so without it every rank trains alone with world size 1. ``cpu_when_no_accelerator``
sets it before parsing; ``check_world_size`` stops a run whose Trainer and launcher disagree.
"""

import os
import warnings

from transformers_align.errors import UserError


class LaunchError(UserError):
    """The processes were started in a way the run cannot use; the message is one line for the user."""


def accelerator_available() -> bool:
    import torch

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6 knows every backend
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()


def cpu_when_no_accelerator(values: dict) -> dict:
    """Parsed command-line values with ``use_cpu=True`` added on a machine without GPU, unless the user chose.

    DeepSpeed is then told the accelerator (``DS_ACCELERATOR=cpu``) instead of guessing and warning.
    """
    if "use_cpu" in values or "no_cuda" in values or accelerator_available():
        return values
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    return dict(values, use_cpu=True)


def argv_with_cpu_default(argv: list) -> list:
    """``cpu_when_no_accelerator`` for a command line."""
    given = {arg.split("=", 1)[0].lstrip("-") for arg in argv if arg.startswith("--")}
    if cpu_when_no_accelerator({name: None for name in given}).get("use_cpu"):
        return [*argv, "--use_cpu", "True"]
    return argv


def launched_world_size() -> int:
    """How many processes the launcher started (torchrun's WORLD_SIZE, or the process group's size)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_world_size(training_args) -> None:
    launched, seen = launched_world_size(), training_args.world_size
    if launched != seen:
        raise LaunchError(
            f"the launcher started {launched} processes but the Trainer sees a world of {seen} "
            f"({training_args.parallel_mode.value}): each process would train alone on the same data. "
            f"On a machine without GPU pass --use_cpu True (scripts.run_clm_lora adds it by itself)"
        )


def find_unused_parameters(mode: str, objectives) -> bool:
    """What DDP's ``find_unused_parameters`` must be (the Trainer would pass True for any PEFT model). An
    alignment step computes its loss at layer L, so the adapter above L gets no gradient: a run whose steps
    include one of alignment alone (mode ``alignment``, or ``alternate`` with alignment among ``objectives``)
    needs the search. Steps that reach the output (task, consistency, any ``joint`` step with one of them)
    reach every adapter parameter, so the search would only cost a graph traversal per step and make DDP
    warn on every rank."""
    return "alignment" in objectives and mode != "joint"


# Warnings from the libraries' own internals that no setting of this project changes.
_NOT_ACTIONABLE = (
    (FutureWarning, r"transformers\.deepspeed module is deprecated"),  # accelerate's DeepSpeedPlugin on 4.43.4
    (FutureWarning, r"`torch\.distributed\.all_gather_into_tensor` is deprecated"),  # DeepSpeed's comm layer
    (FutureWarning, r"`torch\.distributed\.reduce_scatter_tensor` is deprecated"),
)


def silence_library_noise() -> None:
    """Drop the warnings above, tell DeepSpeed the accelerator on a machine without one, and keep accelerate
    from importing DeepSpeed when DeepSpeed is not used.

    accelerate's ``extract_model_from_parallel`` imports ``deepspeed`` whenever it is installed, to test
    ``isinstance(model, DeepSpeedEngine)``; no model is a DeepSpeedEngine before deepspeed is imported,
    so asking whether it has been imported gives the same answer without the import (and its warning).
    """
    import sys

    if not accelerator_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # the API path too: DeepSpeed then need not guess and warn
    for category, message in _NOT_ACTIONABLE:
        warnings.filterwarnings("ignore", message=message, category=category)
    from accelerate.utils import other

    other.is_deepspeed_available = lambda: "deepspeed" in sys.modules
