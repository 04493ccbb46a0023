"""AlignmentTrainer leans on the pinned Trainer's hooks, some of them private. An upgrade that renames one
would leave an override that is never called, silently; these tests fail first, naming the hook."""

import inspect

from transformers import Trainer

from transformers_align.training.trainer import AlignmentTrainer

OWN_HELPERS = {"_batch_objectives"}  # AlignmentTrainer's own methods; every other one overrides the Trainer's
CALLED_PRIVATE_HOOKS = {  # Trainer methods the training package calls (trainer.py, checkpoints.py), by parameter
    "_prepare_inputs": ["inputs"],
    "_get_output_dir": ["trial"],
    "_rotate_checkpoints": ["use_mtime", "output_dir"],
}


def _parameters(function) -> list:
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [name for name, p in inspect.signature(function).parameters.items() if p.kind not in kinds][1:]


def test_every_override_overrides_a_trainer_method_with_its_parameters():
    overrides = {
        name: method
        for name, method in vars(AlignmentTrainer).items()
        if callable(method) and not name.startswith("__") and name not in OWN_HELPERS
    }
    assert {
        "_load_rng_state",
        "_save_checkpoint",
        "_get_output_dir",
        "_maybe_log_save_evaluate",
        "compute_loss",
    } <= set(overrides)
    for name, method in overrides.items():
        assert hasattr(Trainer, name), f"Trainer has no {name}: AlignmentTrainer.{name} would never be called"
        assert _parameters(method)[: len(_parameters(getattr(Trainer, name)))] == _parameters(getattr(Trainer, name)), (
            name
        )


def test_the_private_hooks_called_take_the_parameters_passed():
    for name, parameters in CALLED_PRIVATE_HOOKS.items():
        assert hasattr(Trainer, name), f"Trainer has no {name}"
        assert set(parameters) <= set(_parameters(getattr(Trainer, name))), name
