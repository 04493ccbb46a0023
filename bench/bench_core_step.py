"""Time and size three micro-steps on a small Llama: task, alignment by early exit, alignment from a full forward.

All three steps see the same number of tokens: the task batch is (B, T); the alignment batch is B/2
pairs whose two sides, stacked, are also (B, T), so only the work per token differs. Times are
medians over repeated runs in one process, after a warm-up, with the variants interleaved.

Peak memory is the peak of tensor memory a step allocates on top of what was alive before it (the
weights): activations saved for backward, temporaries and gradients. On CPU, which has no allocator
statistics, every tensor storage created by an operator (forward and backward) is tracked with a
TorchDispatchMode and counted until it is freed; on CUDA, torch.cuda.max_memory_allocated is reported
as well. Run: python bench/bench_core_step.py [--device cuda]
"""

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from transformers_align import AlignLlamaForCausalLM, info_nce, pool
from transformers_align.tiny import byte_level_tokenizer, tiny_config

MIB = 2**20


class TensorMemoryTracker(TorchDispatchMode):
    """Live and peak bytes of the tensor storages that operators allocate while the mode is on.

    Freed storages are only swept out when the running count (which still includes them, so it is an
    upper bound) passes the peak: below it the peak cannot change, so the result is exact and deep
    models avoid a scan of every live storage at every operator.
    """

    def __init__(self):
        super().__init__()
        self.live, self.current, self.peak = {}, 0, 0

    def _sweep(self):
        for key, (ref, size) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key in inputs or (key in self.live and not self.live[key][0].expired()):
                continue
            if key in self.live:  # a freed storage's address, reused
                self.current -= self.live[key][1]
            self.live[key] = (StorageWeakRef(storage), storage.nbytes())
            self.current += storage.nbytes()
        if self.current > self.peak:
            self._sweep()
            self.peak = max(self.peak, self.current)
        return out


def build_model(args, device, dtype):
    torch.manual_seed(0)
    config = tiny_config(
        "llama",
        vocab_size=args.vocab_size or len(byte_level_tokenizer()),
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        attn_implementation=args.attn_implementation,
    )
    layer = args.layer or args.layers // 2
    model = AlignLlamaForCausalLM(config, additional_loss_layer=layer, contrastive_loss_temperature=0.05)
    return model.to(device=device, dtype=dtype).train()


def make_batches(args, vocab_size, device):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (args.batch_size, args.seq_len), generator=generator).to(device)
    mask = torch.ones_like(ids)
    half = args.batch_size // 2
    task = dict(input_ids=ids, attention_mask=mask, labels=ids)
    pairs = dict(
        input_ids_parallel_0=ids[:half],
        attention_mask_parallel_0=mask[:half],
        input_ids_parallel_1=ids[half:],
        attention_mask_parallel_1=mask[half:],
    )
    return task, pairs


def full_forward_alignment_loss(model, pairs):
    """AFP's way: the whole decoder with output_hidden_states=True, then hidden_states[L], pooled, same InfoNCE."""
    settings = model.config
    ids = torch.cat([pairs["input_ids_parallel_0"], pairs["input_ids_parallel_1"]])
    mask = torch.cat([pairs["attention_mask_parallel_0"], pairs["attention_mask_parallel_1"]])
    hidden = model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False).hidden_states
    side0, side1 = pool(hidden[settings.additional_loss_layer], mask, settings.contrastive_pooling_type).chunk(2)
    return info_nce(
        side0,
        side1,
        temperature=settings.contrastive_loss_temperature,
        similarity=settings.distance_function,
        direction=settings.contrastive_direction,
        stop_gradient_side1=settings.unidirectional_contrastive_loss,
    )


def step_functions(model, task, pairs):
    return {
        "task": lambda: model(**task).loss,
        "early_exit": lambda: model(**pairs).loss,
        "full_forward": lambda: full_forward_alignment_loss(model, pairs) * model.config.contrastive_loss_weight,
    }


def run_step(model, loss_fn, device):
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return loss.detach()


def time_steps(model, steps, device, warmup, repeats):
    """Median (wall, process CPU) seconds per step kind; the kinds take turns in a rotating order."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            run_step(model, steps[name], device)
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            run_step(model, steps[name], device)
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in names}


def peak_memory(model, loss_fn, device):
    """(tracked tensor peak, CUDA allocator peak or None) of one step, in bytes above what lived before it."""
    model.zero_grad(set_to_none=True)
    allocator = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run_step(model, loss_fn, device)
        allocator = torch.cuda.max_memory_allocated(device) - before
        model.zero_grad(set_to_none=True)
    with TensorMemoryTracker() as tracker:
        run_step(model, loss_fn, device)
    return tracker.peak, allocator


def machine(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    names = (
        [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if cpuinfo.exists()
        else []
    )
    cpu = names[0] if names else platform.machine()
    return f"{cpu} CPU ({os.cpu_count()} cores), {torch.get_num_threads()} threads, no GPU"


def _ratio_rows(medians, memory, cuda):
    """(label, wall-clock ratio, CPU-time ratio or None, target, met) for each target of the issue."""

    def ratio(a, b, i):
        return medians[a][i] / medians[b][i]

    rows = [
        ("early-exit step / task step", ratio("early_exit", "task", 0), ratio("early_exit", "task", 1), "<= 0.55"),
        (
            "full-forward step / early-exit step",
            ratio("full_forward", "early_exit", 0),
            ratio("full_forward", "early_exit", 1),
            ">= 1.3",
        ),
        (
            "early-exit peak / full-forward peak (tensors)",
            memory["early_exit"][0] / memory["full_forward"][0],
            None,
            "<= 0.6",
        ),
    ]
    if cuda:
        rows.append(
            (
                "early-exit peak / full-forward peak (allocator)",
                memory["early_exit"][1] / memory["full_forward"][1],
                None,
                "<= 0.6",
            )
        )
    return [
        (label, wall, cpu, target, wall <= float(target[3:]) if target[0] == "<" else wall >= float(target[3:]))
        for label, wall, cpu, target in rows
    ]


def report(args, model, device, medians, memory, agreement, load):
    """The results as markdown, ready to paste."""
    cfg = model.config
    layer, cuda = cfg.additional_loss_layer, device.type == "cuda"
    half = args.batch_size // 2
    parameters = sum(p.numel() for p in model.parameters())
    lines = [
        f"date: {datetime.date.today().isoformat()}; machine: {machine(device)}; torch {torch.__version__}; "
        f"load average (1 min) {load[0]:.1f} before timing, {load[1]:.1f} after",
        f"model: Llama, hidden {cfg.hidden_size}, intermediate {cfg.intermediate_size}, "
        f"{cfg.num_hidden_layers} blocks, {cfg.num_attention_heads} heads ({cfg.num_key_value_heads} kv), "
        f"vocab {cfg.vocab_size}, {parameters / 1e6:.1f}M parameters, {args.dtype}, "
        f"attention {cfg._attn_implementation}",
        f"tokens per step: {args.batch_size * args.seq_len} (task {args.batch_size} x {args.seq_len}; "
        f"alignment {half} pairs, 2 x {half} x {args.seq_len}); "
        f"medians of {args.repeats} runs after {args.warmup} warm-up runs each",
        f"both alignment losses agree: |early exit - full forward| = {agreement:.1e}",
        "",
        "| step | wall ms | x task | CPU ms | x task | peak MiB (tensors)"
        + (" | peak MiB (allocator)" if cuda else "")
        + " |",
        "|---|---:|---:|---:|---:|---:" + ("|---:" if cuda else "") + "|",
    ]
    for label, name in (
        ("task micro-step (forward + backward, LM head + CE)", "task"),
        (f"alignment, early exit at L={layer} of {cfg.num_hidden_layers} blocks", "early_exit"),
        (f"alignment, full forward + hidden_states[{layer}] (AFP)", "full_forward"),
    ):
        (wall, cpu), (tracked, allocator) = medians[name], memory[name]
        line = (
            f"| {label} | {wall * 1e3:.1f} | {wall / medians['task'][0]:.2f} | {cpu * 1e3:.1f} | "
            f"{cpu / medians['task'][1]:.2f} | {tracked / MIB:.1f}"
        )
        lines.append(line + (f" | {allocator / MIB:.1f}" if cuda else "") + " |")
    lines += ["", "| ratio | measured (wall) | measured (CPU time) | target | met (wall) |", "|---|---:|---:|---|---|"]
    for label, wall, cpu, target, met in _ratio_rows(medians, memory, cuda):
        lines.append(
            f"| {label} | {wall:.2f}x | {'' if cpu is None else f'{cpu:.2f}x'} | {target} | {'yes' if met else 'no'} |"
        )
    lines += [
        "",
        "CPU ms: process CPU time (all threads), less sensitive than wall time to other load on the machine.",
        "peak MiB (tensors): the most bytes of tensor storage alive at once during one step, counting only the "
        "storages that the step's operators (forward and backward) allocate, i.e. on top of the weights; "
        "it includes the gradients the step creates.",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="CPU threads (default: all this process may use)",
    )
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--intermediate-size", type=int, default=688, help="default: 8/3 x hidden, as Llama")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=None, help="default: the byte-level tokenizer's (262)")
    parser.add_argument("--attn-implementation", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument("--layer", type=int, default=None, help="aligned block L (default: half the blocks)")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="task sequences per step; alignment uses half as many pairs"
    )
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if args.batch_size % 2 or args.batch_size < 4:
        raise SystemExit(f"--batch-size must be even and at least 4 (2 pairs), got {args.batch_size}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model = build_model(args, device, dtype)
    task, pairs = make_batches(args, model.config.vocab_size, device)
    steps = step_functions(model, task, pairs)
    agreement = (
        (run_step(model, steps["early_exit"], device) - run_step(model, steps["full_forward"], device)).abs().item()
    )
    load_before = os.getloadavg()[0]
    medians = time_steps(model, steps, device, args.warmup, args.repeats)
    load = (load_before, os.getloadavg()[0])
    memory = {name: peak_memory(model, fn, device) for name, fn in steps.items()}
    print(report(args, model, device, medians, memory, agreement, load))


if __name__ == "__main__":
    main()
