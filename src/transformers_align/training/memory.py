"""Whether a training run fits the device's memory: an estimate made before the model loads.

The estimate is for one process and its largest training step, every row at the full block size (a batch of
such rows can come at any step), and adds up:

- weights: the parameter count (from the model's config, built on the meta device: nothing is read or
  allocated) times the bytes of the weights' dtype (2 under bf16/fp16 weights, else 4);
- optimizer: each trainable parameter (the LoRA factors, or all weights without an adapter) holds a
  gradient and AdamW's two moments, in the weights' dtype; LoRA's own factors are counted as weights too.
  Under DeepSpeed ZeRO-2 gradients and moments are split over the processes;
- activations: per token and decoder block, what autograd keeps for the backward pass: the input and output
  of every linear layer of the block plus four hidden-size vectors (norms, residual, attention), and the
  input again for every adapted layer whose LoRA dropout draws a new tensor; in the compute dtype (2 bytes
  under bf16/fp16, else 4). With gradient checkpointing only each block's input is kept, plus one block's
  full activations while it is recomputed;
- logits: the task loss's head runs on chunks of at most ``LOGITS_PER_CHUNK`` float32 logits
  (``modeling.causal_lm_loss``), three such tensors alive at once (logits, their softmax, their gradient);
- runtime: ``RUNTIME_BYTES`` for Python, torch, the tokenizer and the data on a CPU; on a GPU the CUDA context.

``tests/training/test_memory.py`` holds the estimate against a measured peak (SmolLM2, one step) to within
``ESTIMATE_FACTOR``. A run is refused when the estimate exceeds the device's memory: on a CPU its whole RAM
(shared by every process of the run; above the RAM available at the start it is warned about), on a GPU
each GPU's free memory.
"""

from dataclasses import dataclass
from typing import Optional

from transformers_align.errors import UserError
from transformers_align.modeling.causal_lm_loss import LOGITS_PER_CHUNK

GIB = 2**30
RUNTIME_BYTES = {"cpu": 1 * GIB, "cuda": GIB // 2}
HIDDEN_VECTORS_PER_BLOCK = 4  # norms, residual and attention output kept per token, besides the linear layers
ESTIMATE_FACTOR = 2.0  # the estimate and a measured peak agree within this factor, either way


class RunDoesNotFitError(UserError):
    """The run's settings clearly exceed the device's memory: lower the setting the message names."""


@dataclass(frozen=True)
class Shape:
    """What the estimate reads from the model: its sizes per decoder block."""

    parameters: int
    blocks: int
    hidden: int
    vocabulary: int
    linear_values_per_token: int  # inputs + outputs of one block's linear layers, per token
    adapted_inputs_per_token: int  # inputs of one block's LoRA-adapted linear layers, per token
    lora_parameters: int  # the LoRA factors over all blocks


def model_shape(model_name_or_path, lora_config: Optional[dict] = None) -> Shape:
    """The sizes of the model's config, read from the meta device (no weights are read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from transformers_align.modeling.registry import decoder_backbone, decoder_layout

    config = AutoConfig.from_pretrained(model_name_or_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    layout = decoder_layout(config)
    blocks = getattr(decoder_backbone(model), layout.blocks)
    targets = set((lora_config or {}).get("target_modules") or [])
    rank = (lora_config or {}).get("r", 8)
    linears = [(name, m) for name, m in blocks[0].named_modules() if isinstance(m, torch.nn.Linear)]
    adapted = [m for name, m in linears if name.rsplit(".", 1)[-1] in targets]
    return Shape(
        parameters=sum(p.numel() for p in model.parameters()),
        blocks=len(blocks),
        hidden=config.hidden_size,
        vocabulary=config.vocab_size,
        linear_values_per_token=sum(m.in_features + m.out_features for _, m in linears),
        adapted_inputs_per_token=sum(m.in_features for m in adapted),
        lora_parameters=len(blocks) * sum(rank * (m.in_features + m.out_features) for m in adapted),
    )


@dataclass(frozen=True)
class RunSettings:
    batch_size: int  # rows per device and step
    block_size: int  # tokens per row
    precision: str = "fp32"  # fp32, bf16 or fp16 (the recipe's PRECISION)
    half_weights: bool = False  # the weights themselves are loaded in bf16/fp16 (--torch_dtype)
    gradient_checkpointing: bool = False
    lora: bool = True
    lora_dropout: float = 0.0
    processes: int = 1  # processes that share the device's memory (CPU) or the ZeRO partitions
    zero: bool = False  # DeepSpeed ZeRO-2: gradients and optimizer states split over the processes
    device: str = "cpu"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per process, by part."""

    weights: int
    optimizer: int
    activations: int
    logits: int
    runtime: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.logits + self.runtime


def estimate(shape: Shape, run: RunSettings) -> MemoryEstimate:
    weight_bytes = 2 if run.half_weights else 4
    compute_bytes = 2 if run.precision in ("bf16", "fp16") else 4
    trainable = shape.lora_parameters if run.lora else shape.parameters
    optimizer = trainable * 3 * weight_bytes  # gradient, first and second moment
    if run.zero:
        optimizer //= max(run.processes, 1)
    tokens = run.batch_size * run.block_size
    per_block = shape.linear_values_per_token + HIDDEN_VECTORS_PER_BLOCK * shape.hidden
    if run.lora and run.lora_dropout > 0:
        per_block += shape.adapted_inputs_per_token
    kept_blocks = (shape.blocks * shape.hidden + per_block) if run.gradient_checkpointing else shape.blocks * per_block
    logits = 3 * 4 * min(tokens * shape.vocabulary, LOGITS_PER_CHUNK)
    return MemoryEstimate(
        weights=shape.parameters * weight_bytes + (shape.lora_parameters * 4 if run.lora else 0),
        optimizer=optimizer,
        activations=tokens * kept_blocks * compute_bytes,
        logits=logits,
        runtime=RUNTIME_BYTES["cuda" if run.device.startswith("cuda") else "cpu"],
    )


def device_memory(device: str) -> "tuple[int, int, str]":
    """The memory a run may not exceed, what is free right now, and the device in words. A GPU: its free memory
    (both). A CPU: the whole RAM, and the RAM available now (other programs free and take theirs all the time:
    a run above it may still fit, one above the whole RAM cannot)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info()
        return free, free, f"the GPU ({torch.cuda.get_device_name()}) has"
    import psutil

    memory = psutil.virtual_memory()
    return memory.total, memory.available, "this machine has"


def gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


def needed_bytes(found: MemoryEstimate, run: RunSettings) -> int:
    """The estimate times the processes that share one memory: a CPU's processes share its RAM, GPUs are one each."""
    return found.total * (1 if run.device.startswith("cuda") else run.processes)


def check_fits(shape: Shape, run: RunSettings, budget: int, budget_owner: str = "the device has") -> MemoryEstimate:
    """The estimate; ``RunDoesNotFitError`` (one line: the estimate, the memory, the setting to lower) if it
    exceeds ``budget`` bytes."""
    found = estimate(shape, run)
    needed = needed_bytes(found, run)
    if needed <= budget:
        return found
    parts = {
        "activations": found.activations,
        "weights": found.weights,
        "optimizer": found.optimizer,
        "logits": found.logits,
        "runtime": found.runtime,
    }
    largest = max(parts, key=parts.get)
    advice = {
        "activations": "lower TRAIN_BSZ (--per_device_train_batch_size) or BLOCK_SIZE (--block_size)"
        + ("" if run.gradient_checkpointing else ", or set GRADIENT_CHECKPOINTING=True"),
        "weights": "train a smaller model" + ("" if run.half_weights else ", or load it in bf16 (PRECISION=bf16)"),
        "optimizer": "train a LoRA adapter (USE_LORA=True)" if not run.lora else "lower the LoRA rank",
        "logits": "lower TRAIN_BSZ (--per_device_train_batch_size)",
        "runtime": "start fewer processes (NPROC)",
    }[largest]
    processes = f" ({gib(found.total)} per process x {run.processes})" if needed != found.total else ""
    raise RunDoesNotFitError(
        f"this run needs about {gib(needed)}{processes}, most of it {largest} ({gib(parts[largest])} for batch "
        f"{run.batch_size} x block {run.block_size} tokens, {run.precision}, gradient checkpointing "
        f"{'on' if run.gradient_checkpointing else 'off'}), but {budget_owner} {gib(budget)}: {advice}"
    )
