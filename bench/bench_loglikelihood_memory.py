"""Peak memory and time of continuation scoring: the chunked scorer vs AFP's full float32 (B, T, V) log-softmax.

The model is XGLM-shaped where it matters here, its 256,008-token vocabulary, with two tiny layers
(random weights), so the vocabulary-sized tensors dominate. Each variant runs in a fresh process;
peak memory is that process's peak resident set size (CPU). Both variants must give the same scores.
Run: python bench/bench_loglikelihood_memory.py [--batch 4 --length 512 --continuation 5]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def run_variant(args) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM

    from transformers_align.evaluation.loglikelihood import continuation_logprobs

    torch.manual_seed(0)
    config = AutoConfig.for_model(
        "xglm",
        vocab_size=args.vocab,
        d_model=64,
        ffn_dim=128,
        num_layers=2,
        attention_heads=4,
        max_position_embeddings=2048,
    )
    model = AutoModelForCausalLM.from_config(config).eval()
    tokens = torch.randint(4, args.vocab, (args.batch, args.length))
    split = args.length - args.continuation
    requests = [(row[:split].tolist(), row[split:].tolist()) for row in tokens]
    start = time.perf_counter()
    if args.variant == "chunked":
        scores = continuation_logprobs(model, requests, batch_size=args.batch, progress=False)
    else:
        with torch.no_grad():
            logprobs = model(input_ids=tokens).logits.float().log_softmax(-1)
        scores = logprobs[:, split - 1 : -1].gather(-1, tokens[:, split:, None]).squeeze(-1).sum(-1).tolist()
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": args.variant, "seconds": round(seconds, 2), "peak_rss_mib": round(peak_mib), "scores": scores}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=["chunked", "full"], help="run one variant (used by the driver)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--continuation", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=256008)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    results = []
    for variant in ("chunked", "full"):
        command = [sys.executable, __file__, "--variant", variant] + sys.argv[1:]
        results.append(
            json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        )
    same = all(abs(a - b) < 1e-3 for a, b in zip(results[0]["scores"], results[1]["scores"]))
    print(f"B={args.batch} T={args.length} continuation={args.continuation} V={args.vocab}; same scores: {same}")
    for r in results:
        print(f"{r['variant']:>8}: {r['seconds']:6.2f} s  peak RSS {r['peak_rss_mib']:6d} MiB")


if __name__ == "__main__":
    main()
