"""PEFT adapter folders written directly (config and tensors, no model loaded, no training): what a merge or an
evaluation reads, made in milliseconds. PEFT loads them onto the tiny model like any saved adapter."""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

TARGETS = ("q_proj", "v_proj")


def _out_features(config: dict, module: str) -> int:
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    return config["hidden_size"] if module == "q_proj" else config["num_key_value_heads"] * head_dim


def write_lora(folder, base_dir, rank=2, seed=0, base_name=None, peft_type="LORA") -> Path:
    """A LoRA (or IA3, ``peft_type="IA3"``) adapter on ``TARGETS`` of every block of the model in ``base_dir``;
    ``base_name`` overrides the base model its config names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = json.loads((Path(base_dir) / "config.json").read_text())
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(model["num_hidden_layers"]):
        for module in TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            out_features = _out_features(model, module)
            if peft_type == "IA3":
                tensors[f"{prefix}.ia3_l"] = 1 + 0.1 * torch.randn(out_features, 1, generator=generator)
            else:
                tensors[f"{prefix}.lora_A.weight"] = 0.1 * torch.randn(rank, model["hidden_size"], generator=generator)
                tensors[f"{prefix}.lora_B.weight"] = 0.1 * torch.randn(out_features, rank, generator=generator)
    config = {
        "peft_type": peft_type,
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_name or base_dir),
        "target_modules": list(TARGETS),
        "inference_mode": True,
    }
    if peft_type == "IA3":
        config["feedforward_modules"] = []
    else:
        config.update(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, bias="none")
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    return folder
