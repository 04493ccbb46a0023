"""Fault cases of ``scripts.merge_adapters``: adapters that cannot be combined, outputs over inputs, bad settings.
The adapters are written directly (tests/support/adapters.py); no case loads a model."""

import json
import shutil
from pathlib import Path

from tests.faults.harness import FaultCase, python_module
from tests.support.adapters import write_lora

ROLES = {"task", "ref_target", "ref_source"}


def adapters(**changes):
    """``setup`` writing the task, ref_target and ref_source adapters; ``changes``: folder -> write_lora options
    (a folder other than the three roles is written too)."""

    def setup(tmp: Path, tiny: Path) -> None:
        for seed, role in enumerate(("task", "ref_target", "ref_source", *sorted(changes.keys() - ROLES))):
            write_lora(tmp / role, tiny, **{"seed": seed, **changes.get(role, {})})

    return setup


def then(setup, change):
    """``setup`` followed by ``change(tmp)``."""

    def combined(tmp: Path, tiny: Path) -> None:
        setup(tmp, tiny)
        change(tmp)

    return combined


def merge(*extra, out="{tmp}/merged"):
    roles = ("--task", "{tmp}/task", "--ref_target", "{tmp}/ref_target", "--ref_source", "{tmp}/ref_source")
    return python_module("merge_adapters", *roles, "--out", out, *extra)


def _edit_config(tmp: Path, role: str, **fields) -> None:
    path = tmp / role / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


CASES = [
    FaultCase(
        name="per-factor merge of different ranks",
        area="merging",
        command=merge("--method", "per-factor"),
        cause=r"factor shapes",
        setup=adapters(ref_source={"rank": 4}),
    ),
    FaultCase(
        name="merge of adapters on different base models",
        area="merging",
        command=merge(),
        cause=r"differ in base_model_name_or_path.*--allow_base_mismatch",
        setup=adapters(ref_target={"base_name": "/models/another-model"}),
    ),
    FaultCase(
        name="merge into an existing --out",
        area="merging",
        command=merge(),
        cause=r"--out .*merged already exists; pass --overwrite",
        setup=adapters(merged={"seed": 9}),
    ),
    FaultCase(
        name="merge --out over the --task adapter with --overwrite",
        area="merging",
        command=merge("--overwrite", out="{tmp}/task"),
        cause=r"--out .*task is the --task input",
        setup=adapters(),
    ),
    FaultCase(
        name="merge --out a folder holding the inputs",
        area="merging",
        command=merge("--overwrite", out="{tmp}"),
        cause=r"--out .* contains the --task input",
        setup=adapters(),
    ),
    FaultCase(
        name="merge with a missing adapter folder",
        area="merging",
        command=merge(),
        cause=r"--ref_source .*ref_source: no such adapter folder",
        setup=then(adapters(), lambda tmp: shutil.rmtree(tmp / "ref_source")),
    ),
    FaultCase(
        name="merge of an adapter without weights",
        area="merging",
        command=merge(),
        cause=r"--ref_target .*has neither adapter_model\.safetensors nor adapter_model\.bin",
        setup=then(adapters(), lambda tmp: (tmp / "ref_target" / "adapter_model.safetensors").unlink()),
    ),
    FaultCase(
        name="merge of an adapter with truncated weights",
        area="merging",
        command=merge(),
        cause=r"--task .*adapter_model\.safetensors: not a readable weights file",
        setup=then(
            adapters(),
            lambda tmp: (tmp / "task" / "adapter_model.safetensors").write_bytes(
                (tmp / "task" / "adapter_model.safetensors").read_bytes()[:100]
            ),
        ),
    ),
    FaultCase(
        name="merge of an adapter with malformed adapter_config.json",
        area="merging",
        command=merge(),
        cause=r"task/adapter_config\.json:1: malformed JSON",
        setup=then(adapters(), lambda tmp: (tmp / "task" / "adapter_config.json").write_text('{"peft_type": "LORA",')),
    ),
    FaultCase(
        name="merge of a folder that is not an adapter",
        area="merging",
        command=merge(),
        cause=r"--ref_target .* has no adapter_config\.json: it is not a PEFT adapter folder",
        setup=then(adapters(), lambda tmp: (tmp / "ref_target" / "adapter_config.json").unlink()),
    ),
    FaultCase(
        name="merge of a LoRA and an IA3 adapter",
        area="merging",
        command=merge(),
        cause=r"different types",
        setup=adapters(ref_source={"peft_type": "IA3"}),
    ),
    FaultCase(
        name="merge of adapters on different target modules",
        area="merging",
        command=merge(),
        cause=r"differ in target_modules",
        setup=then(adapters(), lambda tmp: _edit_config(tmp, "ref_target", target_modules=["q_proj"])),
    ),
    FaultCase(
        name="merge of LoRA adapters with the IA3 rule",
        area="merging",
        command=merge("--method", "ratio"),
        cause=r"--method ratio: does not apply to LORA adapters; choose from delta, delta-svd, per-factor",
        setup=adapters(),
    ),
    FaultCase(
        name="merge by delta-svd without a rank",
        area="merging",
        command=merge("--method", "delta-svd"),
        cause=r"--rank None: method 'delta-svd' needs a rank of at least 1",
        setup=adapters(),
    ),
    FaultCase(
        name="merge with a rank for the exact rule",
        area="merging",
        command=merge("--rank", "4"),
        cause=r"--rank 4: a rank applies only to --method delta-svd",
        setup=adapters(),
    ),
    FaultCase(
        name="merge with a weight that is not a number",
        area="merging",
        command=merge("--t", "nan"),
        cause=r"--t nan: the weight of the language gap must be a finite number",
        setup=adapters(),
    ),
    FaultCase(
        name="merge --out an existing file",
        area="merging",
        command=merge("--overwrite", out="{tmp}/merged.txt"),
        cause=r"--out .*merged\.txt exists and is a file",
        setup=then(adapters(), lambda tmp: (tmp / "merged.txt").write_text("notes\n")),
    ),
    FaultCase(
        name="well-behaved merge",
        area="merging",
        command=merge(),
        cause=r"",
        setup=adapters(),
        exit_code=0,
        may_create=("merged",),
    ),
    FaultCase(
        name="well-behaved merge of different bases when allowed",
        area="merging",
        command=merge("--allow_base_mismatch"),
        cause=r"",
        setup=adapters(ref_target={"base_name": "/models/another-model"}),
        exit_code=0,
        may_create=("merged",),
    ),
]
