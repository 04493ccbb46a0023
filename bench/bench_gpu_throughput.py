"""GPU throughput of full-size shapes: an xglm-564M AFP step, and Llama-3-8B LoRA task vs alignment steps.

Random weights from the published config values (nothing is downloaded):
- ``xglm``: xglm-564M (d_model 1024, 24 layers, 16 heads, ffn 4096, vocab 256,008), full fine-tuning,
  bf16 autocast with fp32 AdamW, batch 4, sequence 512; one AFP joint step = CLM loss on (4, 512)
  + InfoNCE on 4 pairs of 512 tokens a side, pooled `last` at block 1 (AFP's `last-1`). Compare with
  AFP's published 7.55 step/s and 33,269 MB on one A800 (README of chongli17/CrossLingualAlignment).
- ``llama8b``: Llama-3-8B (hidden 4096, 32 layers, 32/8 heads, ffn 14336, vocab 128,256) in bf16, LoRA
  r 8 on q/k/v/o/gate/up/down, gradient checkpointing, sequence 2048; task steps vs alignment steps at
  L = 16 with the same tokens (the pairs' two sides together = the task batch).
- ``training``: bench_training_throughput.py at Llama-3-8B shape (this library's defaults against the
  middle-layer reference's configuration, alternate training): its throughput and memory ratios.

MFU counts model FLOPs only (no recomputation): per token 2·P forward + 2·P for input gradients (the base
weights are frozen) + 6·P_lora, plus attention 4·n_layers·T·d forward and twice that backward, with
P the parameters the step runs through; alignment steps run P of blocks 1..L only. Peak is
torch.cuda.max_memory_allocated. ``--tiny`` shrinks every shape so the script can be smoke-tested on CPU.
Run: python bench/bench_gpu_throughput.py [--which xglm,llama8b,training] [--peak-tflops 989]
"""

import argparse
import datetime
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM

from transformers_align import patch_model
from transformers_align.tiny import tiny_config

SHAPES = {
    "xglm": dict(
        d_model=1024, num_layers=24, attention_heads=16, ffn_dim=4096, vocab_size=256008, max_position_embeddings=2048
    ),
    "llama8b": dict(
        hidden_size=4096,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=14336,
        vocab_size=128256,
        rope_theta=500000.0,
        max_position_embeddings=8192,
    ),
}
TINY = {
    "xglm": dict(
        d_model=64, num_layers=4, attention_heads=4, ffn_dim=128, vocab_size=1000, max_position_embeddings=1024
    ),
    "llama8b": dict(
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=1000,
        max_position_embeddings=1024,
    ),
}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step, device, warmup, repeats):
    """Median seconds of ``step()`` and the peak allocated bytes over the timed runs."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else float("nan")
    return statistics.median(times), peak


def batch(vocab, rows, length, device, generator):
    ids = torch.randint(10, vocab, (rows, length), generator=generator).to(device)
    return ids, torch.ones_like(ids)


def xglm_afp_step(args, device):
    shape = TINY["xglm"] if args.tiny else SHAPES["xglm"]
    length = 32 if args.tiny else 512
    model = AutoModelForCausalLM.from_config(tiny_config("xglm", **shape), attn_implementation="eager").to(device)
    patch_model(
        model,
        additional_loss_layer=1,
        contrastive_pooling_type="last",
        contrastive_loss_temperature=0.05,
        task_loss_weight=1.5,
    )
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    ids, mask = batch(shape["vocab_size"], 4, length, device, generator)
    side0, side1 = (
        batch(shape["vocab_size"], 4, length, device, generator),
        batch(shape["vocab_size"], 4, length, device, generator),
    )

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(
                input_ids=ids,
                attention_mask=mask,
                labels=ids,
                input_ids_parallel_0=side0[0],
                attention_mask_parallel_0=side0[1],
                input_ids_parallel_1=side1[0],
                attention_mask_parallel_1=side1[1],
            )
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds, peak = timed(step, device, args.warmup, args.repeats)
    return {
        "shape": "xglm-564M",
        "batch": 4,
        "sequence": length,
        "steps_per_s": 1 / seconds,
        "peak_MB": peak / 1e6,
        "reference": "AFP: 7.55 step/s, 33,269 MB on 1x A800 (bf16+tf32)",
    }


def llama_lora_steps(args, device):
    from peft import LoraConfig, get_peft_model

    shape = TINY["llama8b"] if args.tiny else SHAPES["llama8b"]
    length, rows, layer = (64, 2, 2) if args.tiny else (2048, args.llama_batch, 16)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_config(tiny_config("llama", **shape), torch_dtype=dtype).to(device)
    patch_model(model, additional_loss_layer=layer)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=targets, task_type="CAUSAL_LM")
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    generator = torch.Generator().manual_seed(0)
    ids, mask = batch(shape["vocab_size"], rows, length, device, generator)
    pairs = (
        batch(shape["vocab_size"], rows, length // 2, device, generator),
        batch(shape["vocab_size"], rows, length // 2, device, generator),
    )

    def run(**inputs):
        def step():
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    blocks = shape["num_hidden_layers"]
    base = {n: p.numel() for n, p in model.named_parameters() if not p.requires_grad}
    lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    per_block = sum(v for n, v in base.items() if ".layers.0." in n)
    embed = shape["vocab_size"] * shape["hidden_size"]
    d, results = shape["hidden_size"], {}
    for name, inputs, depth, head in (
        ("task", dict(input_ids=ids, attention_mask=mask, labels=ids), blocks, True),
        (
            "alignment",
            dict(
                input_ids_parallel_0=pairs[0][0],
                attention_mask_parallel_0=pairs[0][1],
                input_ids_parallel_1=pairs[1][0],
                attention_mask_parallel_1=pairs[1][1],
            ),
            layer,
            False,
        ),
    ):
        seconds, peak = timed(run(**inputs), device, args.warmup, args.repeats)
        tokens = rows * length
        seq = length if name == "task" else length // 2
        params_run = depth * per_block + (embed if head else 0)
        flops_per_token = 4 * params_run + 6 * lora * depth / blocks + 3 * 4 * depth * seq * d
        results[name] = {
            "tokens_per_s": tokens / seconds,
            "peak_MB": peak / 1e6,
            "MFU": tokens / seconds * flops_per_token / (args.peak_tflops * 1e12),
        }
    return {"shape": "Llama-3-8B", "lora_r": 8, "sequence": length, "batch": rows, "layer": layer, **results}


def training_ratios(args, device):
    import bench_training_throughput  # next to this file, on sys.path when run as a script

    argv = ["--device", device.type] + (["--tiny"] if args.tiny else [])
    throughput_ratio, memory_ratio = bench_training_throughput.main(argv)
    return {
        "shape": "tiny" if args.tiny else "Llama-3-8B",
        "throughput_ratio": throughput_ratio,
        "memory_ratio": memory_ratio,
        "targets": "throughput_ratio >= 1.5 at memory_ratio <= 0.6 (issue 16)",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", default="xglm,llama8b,training")
    parser.add_argument(
        "--llama-batch", type=int, default=4, help="sequences per Llama step (the alignment step holds as many tokens)"
    )
    parser.add_argument(
        "--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200 SXM: 989)"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes: a CPU smoke test of this script")
    parser.add_argument("--output-json")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report = {
        "date": datetime.date.today().isoformat(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "tiny": args.tiny,
    }
    for which in args.which.split(","):
        report[which] = {"xglm": xglm_afp_step, "llama8b": llama_lora_steps, "training": training_ratios}[which](
            args, device
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()
    text = json.dumps(report, indent=2)
    print(text)
    if args.output_json:
        with open(args.output_json, "w") as handle:
            handle.write(text + "\n")
    return report


if __name__ == "__main__":
    main()
