"""Benchmark MASSIVE inference throughput (utterances/s) of the tiny default model on CPU: batched
against one at a time.

Run from the repository root: ``python bench/bench_massive_inference.py [--batch-sizes 1 16 32]``. The
prompts are the test utterances of data_example/massive (all shipped locales) in the training chat
format. A random model rarely emits its end token, so every prompt generates ``--max-new-tokens``
tokens and the work per utterance is the same for every batch size. One warm-up batch runs first
(the first ``generate`` of a process imports torch._dynamo, which takes seconds); each batch size
runs ``--repeats`` times and the fastest run is reported (the machine may be shared).
"""

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from transformers_align.data.massive import has_intents, load_massive, massive_prompts
from transformers_align.evaluation.generation import generate_greedy, load_model_and_tokenizer
from transformers_align.tiny import build_tiny_model

SAMPLE = Path(__file__).resolve().parents[1] / "data_example" / "massive"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 32])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--utterances", type=int, default=64, help="test utterances taken across locales")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3, help="runs per batch size; the fastest counts")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    records = [r for path in sorted(SAMPLE.glob("*.jsonl")) for r in load_massive(path.stem, "test", data_file=path)]
    records = records[:: max(1, len(records) // args.utterances)][: args.utterances]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = load_model_and_tokenizer(str(build_tiny_model(Path(tmp) / "llama")), device="cpu")
    prompts = massive_prompts(records, tokenizer, has_intents(records))
    prompt_tokens = sum(len(ids) for ids in tokenizer(prompts)["input_ids"]) / len(prompts)
    generate_greedy(model, tokenizer, prompts[:2], batch_size=2, max_new_tokens=2, desc="warm-up")

    print(
        f"# MASSIVE inference, tiny llama (byte-level), {len(prompts)} utterances, {prompt_tokens:.0f} prompt tokens "
        f"on average, {args.max_new_tokens} new tokens, greedy, KV cache"
    )
    print(
        f"# {datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"# best of {args.repeats} runs per batch size")
    print("| batch size | seconds | utterances/s | new tokens/s | speed-up |")
    print("|---|---|---|---|---|")
    baseline = None
    for batch_size in args.batch_sizes:
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            generate_greedy(
                model,
                tokenizer,
                prompts,
                batch_size=batch_size,
                max_new_tokens=args.max_new_tokens,
                desc=f"batch {batch_size}",
            )
            runs.append(time.perf_counter() - start)
        seconds = min(runs)
        rate = len(prompts) / seconds
        baseline = baseline or rate
        print(
            f"| {batch_size} | {seconds:.1f} | {rate:.2f} | {rate * args.max_new_tokens:.0f} | {rate / baseline:.1f}x |"
        )


if __name__ == "__main__":
    main()
