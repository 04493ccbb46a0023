"""The fork view (tools/forkview.py writes patches/): current with the code, applies to v4.43.4, and gives
the package's losses."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from tests.support import REPO
from tests.support.models import ARCHITECTURES, SENTENCES_A, SENTENCES_B, encode
from tools.forkview import COMMAND, ForkViewError, apply_unified_diff, diff_target, fork_section, stale_files
from transformers_align import AlignBloomForCausalLM, AlignLlamaForCausalLM, AlignQwen2ForCausalLM, AlignXGLMForCausalLM
from transformers_align.modeling import ALIGNED_CLASSES
from transformers_align.tiny import tiny_config

PATCHES = REPO / "patches"
PACKAGE_CLASSES = {
    "llama": AlignLlamaForCausalLM,
    "qwen2": AlignQwen2ForCausalLM,
    "xglm": AlignXGLMForCausalLM,
    "bloom": AlignBloomForCausalLM,
}
SETTINGS = [
    {},
    dict(
        additional_loss_layer=1,
        contrastive_pooling_type="last",
        distance_function="dot",
        contrastive_direction="symmetric",
        contrastive_loss_weight=0.5,
        task_loss_weight=1.5,
        contrastive_loss_temperature=0.7,
        contrastive_pooling_skip_special=True,
    ),
]


def test_committed_patches_are_current():
    stale = stale_files(PATCHES)
    assert not stale, f"patches/ is stale ({', '.join(stale)}): run `{COMMAND}` and commit the result"


def test_a_name_defined_differently_upstream_fails_clearly():
    upstream = "import torch\n\n\ndef pool(hidden):\n    return hidden\n"
    with pytest.raises(ForkViewError, match=r"line 4 already defines 'pool'.*losses\.py"):
        fork_section(
            upstream,
            "transformers.models.toy",
            "modeling_toy.py",
            "class AlignToy(AlignedCausalLMMixin, Toy):\n    pass\n",
        )


def test_shared_imports_are_left_out_and_all_is_extended():
    upstream = 'import torch\nfrom torch import nn\n\n__all__ = ["Toy"]\n'
    section = fork_section(
        upstream, "transformers.models.toy", "modeling_toy.py", "class AlignToy(AlignedCausalLMMixin, Toy):\n    pass\n"
    )
    assert "\nimport torch\n" not in section and "from torch import nn" not in section
    assert "from contextlib import contextmanager\n" in section
    assert section.endswith('\n__all__ = [*__all__, "AlignToy"]\n')


@pytest.fixture(scope="module")
def forked(tmp_path_factory):
    """The four model packages of the installed v4.43.4, patched, imported as
    ``transformers.models.<type>_forkview``."""
    assert transformers.__version__ == "4.43.4"
    root = tmp_path_factory.mktemp("transformers")
    models = Path(transformers.__file__).parent / "models"
    for model_type in ARCHITECTURES:
        shutil.copytree(
            models / model_type,
            root / "src/transformers/models" / model_type,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for diff in sorted(PATCHES.glob("*.diff")):
        if shutil.which("patch"):
            subprocess.run(["patch", "-p1", "--batch", "--forward", "--silent", "-i", str(diff)], cwd=root, check=True)
        else:
            target = root / diff_target(diff.read_text())
            target.write_text(apply_unified_diff(target.read_text(), diff.read_text()))
    packages = {}
    for model_type in ARCHITECTURES:
        name = f"transformers.models.{model_type}_forkview"
        folder = root / "src/transformers/models" / model_type
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
        packages[model_type] = sys.modules[name]  # the package's lazy module replaces itself in sys.modules
    yield root, packages
    for name in [n for n in sys.modules if n.split(".")[2:3] and n.split(".")[2].endswith("_forkview")]:
        del sys.modules[name]


def test_the_diffs_cover_every_architecture_and_the_python_applier_agrees_with_patch(forked):
    root, _ = forked
    models = Path(transformers.__file__).parent / "models"
    targets = set()
    for diff in PATCHES.glob("*.diff"):
        target = diff_target(diff.read_text())
        targets.add(target)
        stock = (models / target.removeprefix("src/transformers/models/")).read_text()
        assert apply_unified_diff(stock, diff.read_text()) == (root / target).read_text()
    expected = {f"src/transformers/models/{t}/{f}" for t in ARCHITECTURES for f in ("__init__.py", f"modeling_{t}.py")}
    assert targets == expected


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_the_patches_only_add(forked, model_type):
    root, _ = forked
    stock_dir = Path(transformers.__file__).parent / "models" / model_type
    patched_dir = root / "src/transformers/models" / model_type
    modeling = f"modeling_{model_type}.py"
    assert (patched_dir / modeling).read_text().startswith((stock_dir / modeling).read_text())
    aligned = PACKAGE_CLASSES[model_type].__name__
    init = [
        line
        for line in (patched_dir / "__init__.py").read_text().splitlines(keepends=True)
        if line.strip() not in (f'"{aligned}",', f"{aligned},")
    ]
    assert "".join(init).replace(f"{aligned}, ", "") == (stock_dir / "__init__.py").read_text()


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_the_stock_class_of_the_patched_file_is_unchanged(forked, tokenizer, model_type):
    _, packages = forked
    stock_cls = {aligned: stock for stock, aligned in ALIGNED_CLASSES.items()}[PACKAGE_CLASSES[model_type]]
    fork_cls = getattr(packages[model_type], stock_cls.__name__)
    assert fork_cls is not stock_cls and fork_cls.__module__.endswith(f"{model_type}_forkview.modeling_{model_type}")
    torch.manual_seed(0)
    stock = stock_cls(tiny_config(model_type)).eval()
    fork = fork_cls(tiny_config(model_type)).eval()
    fork.load_state_dict(stock.state_dict())
    batch = encode(tokenizer, SENTENCES_A)
    with torch.no_grad():
        expected = stock(**batch, labels=batch["input_ids"])
        got = fork(**batch, labels=batch["input_ids"])
    torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.loss, expected.loss, rtol=0, atol=1e-6)


@pytest.mark.parametrize("settings", SETTINGS, ids=["default", "custom"])
@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_the_patched_class_gives_the_package_losses(forked, tokenizer, model_type, settings):
    _, packages = forked
    package_cls = PACKAGE_CLASSES[model_type]
    fork_cls = getattr(packages[model_type], package_cls.__name__)
    torch.manual_seed(0)
    ours = package_cls(tiny_config(model_type), **settings).eval()
    fork = fork_cls(tiny_config(model_type), **settings).eval()
    fork.load_state_dict(ours.state_dict())
    task = encode(tokenizer, SENTENCES_A)
    labels = task["input_ids"].masked_fill(task["attention_mask"] == 0, -100)
    side0, side1 = encode(tokenizer, SENTENCES_A, side="left"), encode(tokenizer, SENTENCES_B)
    pairs = dict(
        input_ids_parallel_0=side0["input_ids"],
        attention_mask_parallel_0=side0["attention_mask"],
        input_ids_parallel_1=side1["input_ids"],
        attention_mask_parallel_1=side1["attention_mask"],
    )
    for inputs in (pairs, dict(task, labels=labels), dict(task, labels=labels, **pairs)):
        with torch.no_grad():
            expected, got = ours(**inputs), fork(**inputs)
        for field in ("loss", "task_loss", "alignment_loss"):
            assert (getattr(got, field) is None) == (getattr(expected, field) is None), field
            if getattr(expected, field) is not None:
                torch.testing.assert_close(getattr(got, field), getattr(expected, field), rtol=0, atol=1e-6)
