"""AlignmentTrainer leans on the pinned Trainer's hooks, some of them private. An upgrade that renames one, or
changes its parameters, would leave an override that is never called or a call that binds wrongly; these tests
compare the full signatures with transformers 4.43.4's and bind every call the training package makes, so a
transformers bump fails here, naming the hook, not in a user's run."""

import ast
import inspect

import pytest
from transformers import Trainer

from tests.support import REPO
from transformers_align.training.trainer import AlignmentTrainer

P = inspect.Parameter
EMPTY = P.empty
# 4.43.4's signatures of the Trainer methods that AlignmentTrainer overrides or that the training package calls:
# (name, kind, default) after ``self``, read from transformers/trainer.py v4.43.4.
PINNED = {
    "__init__": [
        ("model", P.POSITIONAL_OR_KEYWORD, None),
        ("args", P.POSITIONAL_OR_KEYWORD, None),
        ("data_collator", P.POSITIONAL_OR_KEYWORD, None),
        ("train_dataset", P.POSITIONAL_OR_KEYWORD, None),
        ("eval_dataset", P.POSITIONAL_OR_KEYWORD, None),
        ("tokenizer", P.POSITIONAL_OR_KEYWORD, None),
        ("model_init", P.POSITIONAL_OR_KEYWORD, None),
        ("compute_metrics", P.POSITIONAL_OR_KEYWORD, None),
        ("callbacks", P.POSITIONAL_OR_KEYWORD, None),
        ("optimizers", P.POSITIONAL_OR_KEYWORD, (None, None)),
        ("preprocess_logits_for_metrics", P.POSITIONAL_OR_KEYWORD, None),
    ],
    "get_train_dataloader": [],
    "num_examples": [("dataloader", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    "floating_point_ops": [("inputs", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    "compute_loss": [
        ("model", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("inputs", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("return_outputs", P.POSITIONAL_OR_KEYWORD, False),
    ],
    "prediction_step": [
        ("model", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("inputs", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("prediction_loss_only", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("ignore_keys", P.POSITIONAL_OR_KEYWORD, None),
    ],
    "evaluation_loop": [
        ("dataloader", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("description", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("prediction_loss_only", P.POSITIONAL_OR_KEYWORD, None),
        ("ignore_keys", P.POSITIONAL_OR_KEYWORD, None),
        ("metric_key_prefix", P.POSITIONAL_OR_KEYWORD, "eval"),
    ],
    "_load_rng_state": [("checkpoint", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    "_save_checkpoint": [
        ("model", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("trial", P.POSITIONAL_OR_KEYWORD, EMPTY),
        ("metrics", P.POSITIONAL_OR_KEYWORD, None),
    ],
    "_get_output_dir": [("trial", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    "create_optimizer": [],
    "_maybe_log_save_evaluate": [
        (name, P.POSITIONAL_OR_KEYWORD, EMPTY)
        for name in ("tr_loss", "grad_norm", "model", "trial", "epoch", "ignore_keys_for_eval")
    ],
    "log": [("logs", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    "_prepare_inputs": [("inputs", P.POSITIONAL_OR_KEYWORD, EMPTY)],
    "_rotate_checkpoints": [
        ("use_mtime", P.POSITIONAL_OR_KEYWORD, False),
        ("output_dir", P.POSITIONAL_OR_KEYWORD, None),
    ],
}
OWN_HELPERS = {"_batch_objectives"}  # AlignmentTrainer's own methods; every other one overrides the Trainer's
CALLING_MODULES = ("training/trainer.py", "training/checkpoints.py")  # where Trainer methods are called


def _parameters(function) -> list:
    return [(p.name, p.kind, p.default) for p in list(inspect.signature(function).parameters.values())[1:]]


def _overrides() -> dict:
    return {
        name: method
        for name, method in vars(AlignmentTrainer).items()
        if callable(method) and (not name.startswith("__") or name == "__init__") and name not in OWN_HELPERS
    }


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_trainer_hooks_have_the_pinned_signatures(name):
    assert hasattr(Trainer, name), f"Trainer has no {name}"
    assert _parameters(getattr(Trainer, name)) == PINNED[name], f"Trainer.{name} changed its signature"


def test_every_override_is_pinned_and_accepts_the_stock_parameters():
    overrides = _overrides()
    assert set(overrides) <= set(PINNED), f"overrides without a pinned signature: {set(overrides) - set(PINNED)}"
    for name, method in overrides.items():
        own = _parameters(method)
        stock = PINNED[name]
        if name == "__init__":  # the constructor takes the stock ones by keyword (**kwargs) and adds its own
            assert {n for n, _, _ in own} >= {"model", "args", "train_dataset", "eval_dataset"}, name
            assert own[-1][1] == P.VAR_KEYWORD, name
            continue
        assert own[: len(stock)] == stock, f"AlignmentTrainer.{name} does not take Trainer.{name}'s parameters"
        assert all(kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD) for _, kind, _ in own[len(stock) :]), name


def _trainer_calls():
    """``(module, line, method, positional count, keywords)`` of each call of a Trainer method in the package."""
    for module in CALLING_MODULES:
        tree = ast.parse((REPO / "src/transformers_align" / module).read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner, name = node.func.value, node.func.attr
            is_super = isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super"
            if name in PINNED and (is_super or (isinstance(owner, ast.Name) and owner.id in ("self", "trainer"))):
                starred = any(isinstance(a, ast.Starred) for a in node.args)
                positional = [a for a in node.args if not isinstance(a, ast.Starred)]
                yield module, node.lineno, name, len(positional), [k.arg for k in node.keywords if k.arg], starred


def test_every_call_of_a_trainer_method_binds_to_its_signature():
    calls = list(_trainer_calls())
    called = {name for _, _, name, _, _, _ in calls}
    assert {"_save_checkpoint", "_get_output_dir", "_rotate_checkpoints", "_prepare_inputs"} <= called
    for module, line, name, positional, keywords, starred in calls:
        signature = inspect.signature(getattr(Trainer, name))
        try:
            signature.bind(None, *range(positional), **{k: None for k in keywords})
        except TypeError as error:
            pytest.fail(f"{module} line {line}: {name} called with {positional} positional and {keywords}: {error}")
        if starred:  # forwarded extras (``*args``) go only where 4.43.4 takes no more positional parameters
            assert positional == len(PINNED[name]), f"{module} line {line}: {name}"
