"""Alternate training end to end: this library's defaults against the middle-layer reference's configuration.

Both configurations train the same LoRA Llama (same initial weights, seed, data and number of steps),
alternating task steps (MASSIVE-shaped: a fixed system prompt, utterances and answers of varying
length, only the answer labelled) and alignment steps (sentence pairs of varying length, InfoNCE at
the middle block), one micro-batch per optimizer step, gradient checkpointing on:

- ``library``: the aligned forward's task loss (LM head on labelled positions only, in chunks, no
  full logits), length-grouped batches (transformers' ``get_length_grouped_indices``, megabatches of
  50 batches), alignment steps stop at block L and never run the LM head;
- ``reference`` (mid-align's recipe): stock ``LlamaForCausalLM.forward`` (LM head on every position,
  float32 logits, stock cross-entropy), batches drawn at random and padded to their longest, and the
  LM head run on side 0's layer-L states in alignment steps, as mid-align's forward does.

The data are 50 batches of each stream (one megabatch of the length grouping, as in a real run). The
configurations take turns, an epoch each, in a rotating order; in an epoch both run the task and
alignment steps at the same randomly chosen positions of their own batch order. Throughput is real
tokens (padding excluded) per second and labelled tokens per second, medians over the epochs.
On CPU the ratio uses process CPU time (one thread; less disturbed by other load than wall time).
Peak memory of one task step (the larger step of both) on the same random batch, above the weights:
bench_core_step's tensor tracker on CPU, the CUDA allocator on GPU.

Shapes (CPU): a small model cannot be like Llama-3-8B in both compute and memory, so two proxies:
``throughput`` has Llama-3's proportions (ffn 3.5 x hidden, 4 query heads per KV head) with the vocabulary
chosen so that the LM head's share of the FLOPs equals Llama-3-8B's; ``memory`` has Llama-3's
vocabulary (128,256) and depth x width chosen so that float32 logits per token are the same multiple
of the checkpointed activations as at 8B in bf16. ``llama8b`` is the real shape (bf16, for a GPU).
Run: python bench/bench_training_throughput.py [--quick] [--device cuda]
"""

import argparse
import datetime
import os
import statistics
import time
from dataclasses import dataclass

import torch
from bench_core_step import machine, peak_memory, run_step
from peft import LoraConfig, get_peft_model
from transformers import LlamaForCausalLM
from transformers.trainer_pt_utils import get_length_grouped_indices

from transformers_align import AlignLlamaForCausalLM
from transformers_align.modeling import unwrap_causal_lm
from transformers_align.tiny import tiny_config

MIB = 2**20
CONFIGS = ("library", "reference")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # mid-align's LoRA


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    vocab: int
    heads: int
    kv_heads: int

    @property
    def intermediate(self):
        return self.hidden * 7 // 2  # Llama-3-8B: 14,336 = 3.5 x 4,096

    def block_params(self):
        kv_width = self.hidden * self.kv_heads // self.heads
        return 2 * self.hidden * self.hidden + 2 * self.hidden * kv_width + 3 * self.hidden * self.intermediate

    def lm_head_flop_share(self, context):
        """LM-head share of a token's forward FLOPs (matmuls, causal attention over ``context`` tokens)."""
        blocks = self.layers * (2 * self.block_params() + 2 * context * self.hidden)
        head = 2 * self.vocab * self.hidden
        return head / (blocks + head)

    def logits_per_checkpoint(self, activation_bytes):
        """float32 logits of a token over its checkpointed activations (one hidden state per block)."""
        return 4 * self.vocab / (self.layers * self.hidden * activation_bytes)


LLAMA3_8B = Shape(hidden=4096, layers=32, vocab=128256, heads=32, kv_heads=8)
TYPICAL_CONTEXT = 100  # tokens of a MASSIVE-shaped task example (see make_task_examples)
POOL_BATCHES = 50  # batches of each stream in the data: one megabatch of get_length_grouped_indices, as in a real run


def throughput_proxy(hidden=256, layers=8):
    share = LLAMA3_8B.lm_head_flop_share(TYPICAL_CONTEXT)
    base = Shape(hidden, layers, 0, 8, 2)
    blocks = layers * (2 * base.block_params() + 2 * TYPICAL_CONTEXT * hidden)
    return Shape(hidden, layers, round(share / (1 - share) * blocks / (2 * hidden)), 8, 2)


def memory_proxy(hidden=256):
    layers = round(4 * LLAMA3_8B.vocab / (LLAMA3_8B.logits_per_checkpoint(2) * hidden * 4))
    return Shape(hidden, layers, LLAMA3_8B.vocab, 8, 2)


def build_model(shape, device, dtype, seed, checkpointing=True):
    torch.manual_seed(seed)
    config = tiny_config(
        "llama",
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        attn_implementation="sdpa",
        max_position_embeddings=4096,
        rope_theta=500000.0,
        use_cache=False,
    )
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in place on the device: an 8B model never passes through host memory in fp32
    try:
        with torch.device(device):
            model = AlignLlamaForCausalLM(
                config, additional_loss_layer=shape.layers // 2, contrastive_loss_temperature=0.05
            )
    finally:
        torch.set_default_dtype(default_dtype)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=LORA_TARGETS))
    return model.train()


def make_task_examples(count, vocab, generator, prompt_tokens=64):
    """(ids, labels): a fixed prompt (system prompt + chat headers), a 4-32 token utterance, a 4-32 token answer."""
    prompt = torch.randint(3, vocab, (prompt_tokens,), generator=generator)
    examples = []
    for _ in range(count):
        utterance_length, answer_length = torch.randint(4, 33, (2,), generator=generator).tolist()
        utterance = torch.randint(3, vocab, (utterance_length,), generator=generator)
        answer = torch.randint(3, vocab, (answer_length,), generator=generator)
        ids = torch.cat([prompt, utterance, answer])
        labels = ids.clone()
        labels[: prompt_tokens + utterance_length] = -100
        examples.append((ids, labels))
    return examples


def make_pairs(count, vocab, generator):
    """Sentence pairs: side 0 of 6-64 tokens, its translation 0.8-1.25 times as long."""
    pairs = []
    for _ in range(count):
        length0 = int(torch.randint(6, 65, (1,), generator=generator))
        length1 = max(3, round(length0 * float(torch.empty(1).uniform_(0.8, 1.25, generator=generator))))
        pairs.append(
            (
                torch.randint(3, vocab, (length0,), generator=generator),
                torch.randint(3, vocab, (length1,), generator=generator),
            )
        )
    return pairs


def pad(sequences, value):
    length = max(len(s) for s in sequences)
    return torch.stack([torch.cat([s, s.new_full((length - len(s),), value)]) for s in sequences])


def task_batch(examples, device):
    ids = pad([ids for ids, _ in examples], 2)
    mask = pad([torch.ones_like(ids) for ids, _ in examples], 0)
    return dict(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        labels=pad([labels for _, labels in examples], -100).to(device),
    )


def pair_batch(pairs, device):
    batch = {}
    for side in (0, 1):
        batch[f"input_ids_parallel_{side}"] = pad([p[side] for p in pairs], 2).to(device)
        batch[f"attention_mask_parallel_{side}"] = pad([torch.ones_like(p[side]) for p in pairs], 0).to(device)
    return batch


def epoch_batches(items, lengths, batch_size, grouped, seed):
    """Index batches for one epoch: length-grouped (library) or a random permutation (reference), same seed."""
    generator = torch.Generator().manual_seed(seed)
    order = (
        get_length_grouped_indices(lengths, batch_size, mega_batch_mult=50, generator=generator)
        if grouped
        else torch.randperm(len(lengths), generator=generator).tolist()
    )
    return [[items[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]


def stock_task_loss(model, batch):
    """mid-align's task step: stock LlamaForCausalLM.forward, float32 logits at every position."""
    return LlamaForCausalLM.forward(unwrap_causal_lm(model), **batch).loss


def alignment_loss_with_lm_head(model, batch):
    """mid-align's alignment step: the layer-L loss, and the LM head on side 0's layer-L states (unused)."""
    causal_lm = unwrap_causal_lm(model)
    captured = []
    hook = causal_lm.model.register_forward_hook(lambda module, args, out: captured.append(out.last_hidden_state))
    try:
        loss = model(**batch).loss
    finally:
        hook.remove()
    rows = batch["input_ids_parallel_0"].shape[0]
    causal_lm.lm_head(captured[0][:rows]).float()
    return loss


def step_function(config, kind, model, batch):
    if kind == "task":
        return (lambda: model(**batch).loss) if config == "library" else (lambda: stock_task_loss(model, batch))
    return (lambda: model(**batch).loss) if config == "library" else (lambda: alignment_loss_with_lm_head(model, batch))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(config, model, optimizer, task_examples, pairs, args, epoch, device, steps):
    """``steps`` task and alignment steps, alternating, at the same randomly chosen positions of the epoch for
    both configurations; returns (wall s, CPU s, real tokens, labelled tokens, padded tokens)."""
    grouped, seed = config == "library", args.seed * 1000 + epoch
    tasks = epoch_batches(task_examples, [len(ids) for ids, _ in task_examples], args.batch_size, grouped, seed)
    sides = epoch_batches(pairs, [max(len(a), len(b)) for a, b in pairs], args.batch_size, grouped, seed + 1)
    chosen = sorted(torch.randperm(len(tasks), generator=torch.Generator().manual_seed(seed + 2))[:steps].tolist())
    wall = cpu = real = labelled = padded = 0
    for position in chosen:
        for kind, batch in (
            ("task", task_batch(tasks[position], device)),
            ("alignment", pair_batch(sides[position], device)),
        ):
            masks = [value for name, value in batch.items() if name.startswith("attention_mask")]
            real += sum(int(mask.sum()) for mask in masks)
            padded += sum(mask.numel() for mask in masks)
            if kind == "task":
                labelled += int((batch["labels"][:, 1:] != -100).sum())
            synchronize(device)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            run_step(model, step_function(config, kind, model, batch), device)
            optimizer.step()
            synchronize(device)
            wall += time.perf_counter() - start_wall
            cpu += time.process_time() - start_cpu
    return wall, cpu, real, labelled, padded


def measure_throughput(args, shape, device, dtype):
    generator = torch.Generator().manual_seed(args.seed)
    count = args.batch_size * POOL_BATCHES
    task_examples, pairs = make_task_examples(count, shape.vocab, generator), make_pairs(count, shape.vocab, generator)
    models = {
        config: build_model(shape, device, dtype, args.seed, checkpointing=args.checkpointing or config == "reference")
        for config in CONFIGS
    }
    optimizers = {
        c: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4) for c, m in models.items()
    }
    for config in CONFIGS:  # warm-up: one task and one alignment step each, untimed
        train_epoch(config, models[config], optimizers[config], task_examples, pairs, args, args.epochs, device, 1)
    rounds = {config: [] for config in CONFIGS}
    for epoch in range(args.epochs):
        for config in CONFIGS if epoch % 2 else CONFIGS[::-1]:
            rounds[config].append(
                train_epoch(
                    config,
                    models[config],
                    optimizers[config],
                    task_examples,
                    pairs,
                    args,
                    epoch,
                    device,
                    args.steps_per_epoch,
                )
            )
    return rounds


def measure_memory(args, shape, device, dtype):
    """Peak bytes above the weights of one task step (a run's largest), same random batch for both configs."""
    generator = torch.Generator().manual_seed(args.seed)
    task = task_batch(make_task_examples(args.memory_batch_size, shape.vocab, generator), device)
    model = build_model(shape, device, dtype, args.seed)
    peaks = {}
    for config in CONFIGS:
        tracked, allocator = peak_memory(model, step_function(config, "task", model, task), device)
        peaks[config] = allocator if device.type == "cuda" else tracked
    return peaks, int(task["attention_mask"].numel()), int((task["labels"][:, 1:] != -100).sum())


def block_transient_per_token(shape, activation_bytes):
    """Bytes a recomputed LoRA Llama block holds per token during its backward (estimate, see BENCHMARKS.md).

    Saved by one block: about 16 hidden-wide tensors (norm outputs, q/k/v/o and their rotary copies,
    attention output, residuals, LoRA dropout copies) and 5 ffn-wide ones (gate, up, SiLU, product,
    down's dropout copy); its backward adds about 2 of each as gradients in flight.
    """
    return (18 * shape.hidden + 7 * shape.intermediate) * activation_bytes


def analytic_task_peak(shape, activation_bytes, tokens, labelled, config, chunk_rows):
    """Peak bytes above the weights of a checkpointed LoRA task step, from the tensors alive at its peak."""
    checkpoints = tokens * shape.layers * shape.hidden * activation_bytes
    block = tokens * block_transient_per_token(shape, activation_bytes)
    if config == "reference":  # float32 logits, their shifted copy and the log-softmax, then three as gradients
        return checkpoints + max(tokens * 12 * shape.vocab, block)
    return checkpoints + max(min(labelled, chunk_rows) * shape.vocab * (12 + activation_bytes), block)


def memory_ratio_at(shape, activation_bytes, tokens, labelled):
    from transformers_align.modeling.causal_lm_loss import LOGITS_PER_CHUNK

    peaks = [
        analytic_task_peak(shape, activation_bytes, tokens, labelled, config, LOGITS_PER_CHUNK // shape.vocab)
        for config in CONFIGS
    ]
    return peaks[0] / peaks[1], peaks


def report(args, shapes, device, rounds, memory, load):
    peaks, memory_tokens, memory_labelled = memory
    per_second, activation_bytes = {}, torch.finfo(getattr(torch, args.dtype)).bits // 8
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        f"date: {now:%Y-%m-%d %H:%M} UTC; machine: {machine(device)}; torch {torch.__version__}; "
        f"load average (1 min) {load[0]:.1f} before, {load[1]:.1f} after",
        f"throughput shape: hidden {shapes[0].hidden}, {shapes[0].layers} blocks, vocabulary {shapes[0].vocab} "
        f"(LM head {100 * shapes[0].lm_head_flop_share(TYPICAL_CONTEXT):.1f}% of the FLOPs; Llama-3-8B "
        f"{100 * LLAMA3_8B.lm_head_flop_share(TYPICAL_CONTEXT):.1f}%), {args.dtype}, LoRA r 8, "
        f"batch {args.batch_size}, {args.steps_per_epoch} task + {args.steps_per_epoch} alignment steps "
        f"timed an epoch of {POOL_BATCHES} + {POOL_BATCHES}, {args.epochs} epochs after 2 warm-up steps; "
        f"library gradient checkpointing {'on' if args.checkpointing else 'off'}",
        f"memory shape: hidden {shapes[1].hidden}, {shapes[1].layers} blocks, vocabulary {shapes[1].vocab} "
        f"(float32 logits {shapes[1].logits_per_checkpoint(activation_bytes):.2f}x the checkpointed "
        f"activations; Llama-3-8B in bf16 {LLAMA3_8B.logits_per_checkpoint(2):.2f}x), "
        f"task batch {args.memory_batch_size} "
        f"({memory_tokens} positions, {memory_labelled} labelled)",
        "",
        "| configuration | real tokens/s | labelled tokens/s | "
        "real tokens/s (CPU time) | padding | task-step peak MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for config in CONFIGS:
        wall, cpu, real, labelled, padded = zip(*rounds[config])
        per_second[config] = [r / w for r, w in zip(real, wall)], [r / c for r, c in zip(real, cpu)]
        lines.append(
            f"| {config} | {statistics.median(per_second[config][0]):,.0f} | "
            f"{statistics.median([tokens / seconds for tokens, seconds in zip(labelled, wall)]):,.0f} | "
            f"{statistics.median(per_second[config][1]):,.0f} | {1 - sum(real) / sum(padded):.0%} | "
            f"{peaks[config] / MIB:,.1f} |"
        )
    clock = 1 if device.type == "cpu" else 0  # CPU time on CPU, wall time on GPU
    epoch_ratios = [a / b for a, b in zip(per_second["library"][clock], per_second["reference"][clock])]
    throughput_ratio = statistics.median(epoch_ratios)
    memory_ratio = peaks["library"] / peaks["reference"]
    analytic, (library_bytes, reference_bytes) = memory_ratio_at(LLAMA3_8B, 2, 32 * 128, 32 * 18)
    _, predicted = memory_ratio_at(shapes[1], activation_bytes, memory_tokens, memory_labelled)
    lines += [
        "",
        f"throughput ratio (library / reference, {'CPU' if clock else 'wall'} time): median of per-epoch ratios "
        f"{throughput_ratio:.2f} (epochs: {', '.join(f'{r:.2f}' for r in epoch_ratios)})",
        f"task-step peak memory ratio (library / reference, memory shape): {memory_ratio:.2f}; the same computation as "
        f"below predicts {predicted[0] / MIB:,.1f} and {predicted[1] / MIB:,.1f} MiB for the memory shape",
        f"computed for Llama-3-8B (bf16, LoRA, checkpointing, 32 x 128 positions, 18 labelled a row): "
        f"{library_bytes / 2**30:.2f} GiB / {reference_bytes / 2**30:.2f} GiB = {analytic:.2f}",
    ]
    print("\n".join(lines))
    return throughput_ratio, memory_ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--quick", action="store_true", help="fewer epochs and steps (under 5 minutes on the development machine)"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny shapes: a smoke test of this script")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="sequences (or pairs) a step; default 16 (CPU), 32 (GPU)"
    )
    parser.add_argument(
        "--steps-per-epoch", type=int, default=None, help="timed task (and as many alignment) steps an epoch"
    )
    parser.add_argument("--epochs", type=int, default=None, help="timed epochs per configuration")
    parser.add_argument("--memory-batch-size", type=int, default=None)
    parser.add_argument(
        "--no-library-checkpointing",
        dest="checkpointing",
        action="store_false",
        help="train the library configuration without gradient checkpointing (the reference keeps it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    cuda = args.device == "cuda"
    defaults = dict(
        batch_size=32 if cuda else 16,
        steps_per_epoch=1 if args.tiny else 3 if args.quick else 4,
        epochs=1 if args.tiny else 3 if args.quick else 5,
        memory_batch_size=32 if cuda else 2 if args.quick or args.tiny else 4,
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.dtype = "bfloat16" if cuda else "float32"
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if args.tiny:
        shapes = (Shape(32, 2, 300, 4, 2), Shape(32, 4, 2000, 4, 2))
    else:
        shapes = (LLAMA3_8B, LLAMA3_8B) if cuda else (throughput_proxy(), memory_proxy())
    load_before = os.getloadavg()[0]
    rounds = measure_throughput(args, shapes[0], device, dtype)
    if cuda:
        torch.cuda.empty_cache()
    memory = measure_memory(args, shapes[1], device, dtype)
    throughput_ratio, memory_ratio = report(args, shapes, device, rounds, memory, (load_before, os.getloadavg()[0]))
    print(f"throughput_ratio={throughput_ratio:.2f} memory_ratio={memory_ratio:.2f}")
    return throughput_ratio, memory_ratio


if __name__ == "__main__":
    main()
