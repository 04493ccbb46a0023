"""Peak memory and time to the first training step on a generated 1M-record AFP-style file (issue 12 §2).

Runs ``python -m scripts.run_clm_lora`` on a tiny model for one step, as a user would, from the code
tree given by ``--code-root`` (default: this checkout), and reports for each start the wall time until
the first step's log line, the child's CPU time (user + system, less sensitive than wall time to a
shared machine's load; it includes the one training step) and its peak resident memory (``ru_maxrss``
from ``wait4``).
``--starts cold,cached`` runs twice: the first start with an empty ``HF_DATASETS_CACHE``, the second
reusing it. To measure the code before ``datasets`` (the list-of-ints path), export that commit
(``git archive <commit> | tar -x -C /tmp/before``) and pass ``--code-root /tmp/before``.

Prints one line per start and, last, ``time_to_first_step_s=<...> cpu_s=<...> peak_rss_mib=<...>`` per start.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "the library opens at nine and closes late on sundays because students study there before exams "
    "find largest number list sort words alphabetically suggest name pet cat explain why sky blue"
).split()
CHINESE = "图书馆九点开门找出列表中最大的数按字母顺序排列这些英文单词给出这个词的同义词快乐高兴"


def sentence(rng, low, high):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def write_afp_file(path: Path, records: int, seed: int = 0) -> None:
    """AFP's record shape (sent0, sent1, clm_text, clm_prompt_len), lengths varying like
    scripts.generate_sup_data's output."""
    rng = random.Random(seed)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as handle:
        for _ in range(records):
            english = sentence(rng, 4, 14)
            chinese = "".join(rng.choice(CHINESE) for _ in range(rng.randint(6, 20))) + "。"
            prompt = f"{sentence(rng, 4, 12)} Answer in Chinese: "
            record = {"sent0": english, "sent1": chinese, "clm_text": prompt + chinese, "clm_prompt_len": len(prompt)}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def one_start(code_root: Path, model_dir: Path, data: Path, cache: Path, output: Path, workers: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "scripts.run_clm_lora",
        "--model_name_or_path",
        str(model_dir),
        "--train_file",
        str(data),
        "--data_schema",
        "afp",
        "--training_mode",
        "joint",
        "--max_steps",
        "1",
        "--per_device_train_batch_size",
        "8",
        "--block_size",
        "256",
        "--additional_loss_layer",
        "2",
        "--do_train",
        "--output_dir",
        str(output),
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--logging_steps",
        "1",
        "--disable_tqdm",
        "true",
        "--use_cpu",
        "True",
        "--overwrite_output_dir",
        "True",
    ]
    if workers:
        command += ["--preprocessing_num_workers", str(workers)]
    env = dict(
        os.environ,
        PYTHONPATH=str(code_root / "src"),
        HF_DATASETS_CACHE=str(cache),
        OMP_NUM_THREADS="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    start = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=code_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first_step, tail = None, []
    for line in child.stdout:
        tail = (tail + [line])[-20:]
        if first_step is None and "'loss'" in line:
            first_step = time.perf_counter() - start
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0 or first_step is None:
        raise SystemExit(f"the training start failed (status {status}):\n{''.join(tail)}")
    return {
        "time_to_first_step_s": round(first_step, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_data_loading"))
    parser.add_argument("--code-root", type=Path, default=REPO, help="the code tree to measure (its src/ and scripts/)")
    parser.add_argument("--starts", default="cold,cached", help="comma-separated: cold (empty cache) and/or cached")
    parser.add_argument("--preprocessing-num-workers", type=int, default=0)
    args = parser.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"afp_{args.records}.jsonl"
    if not data.exists():
        write_afp_file(data, args.records)
    sys.path.insert(0, str(REPO / "src"))
    from transformers_align.tiny import build_tiny_model

    model_dir = build_tiny_model(args.workdir / "tiny-xglm", model_type="xglm")
    cache = args.workdir / "datasets_cache"
    results = {}
    for start in args.starts.split(","):
        if start == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        results[start] = one_start(
            args.code_root.resolve(), model_dir, data, cache, args.workdir / "out", args.preprocessing_num_workers
        )
        print(f"{start}: {results[start]}", flush=True)
    print(
        " ".join(
            f"{start}: time_to_first_step_s={r['time_to_first_step_s']} cpu_s={r['cpu_s']} "
            f"peak_rss_mib={r['peak_rss_mib']}"
            for start, r in results.items()
        )
    )


if __name__ == "__main__":
    main()
