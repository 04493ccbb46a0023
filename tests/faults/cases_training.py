"""Fault cases of ``scripts.run_clm_lora`` and the training recipes: data, settings, runs, resumes, distributed.

Every case stops in the validation pass before any data or model loads (``training.preflight``), or once the
data is read, still before the model loads: each ``run_clm_lora`` case runs on a copy of the tiny model
without its weights, so a case that loaded the model would fail there instead.
"""

import json
from dataclasses import replace
from pathlib import Path

from tests.faults.harness import FaultCase, python_module, recipe

ROWS = "{tmp}/rows.json"  # written by ``_rows``: distinct pairs, so the pair stream fills a batch of 2
TRAIN = (
    "--model_name_or_path",
    "{tiny}",
    "--train_file",
    "{data}/train_baseline_with_alignment.json",
    "--output_dir",
    "{tmp}/out",
    "--do_train",
    "--report_to",
    "none",
)


def train(*extra, train_file=None):
    """``python -m scripts.run_clm_lora`` on the tiny model, with ``extra`` flags (and another train file)."""
    arguments = list(TRAIN)
    if train_file:
        arguments[3] = train_file
    return python_module("run_clm_lora", *arguments, *extra)


def _write(name: str, content):
    """A setup that writes ``content`` (text or bytes) to ``{tmp}/name``."""

    def setup(tmp: Path, tiny: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    return setup


def _jsonl(name: str, rows):
    return _write(name, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _rows(n=8, pairs=True):
    rows = [{"prefix": f"question {i}: ", "text": f"answer {i}"} for i in range(n)]
    if pairs:
        for i, row in enumerate(rows):
            row.update(text_parallel_0=f"phrase {i}", text_parallel_1=f"Satz {i}")
    return _jsonl("rows.json", rows)


def _both(*setups):
    def setup(tmp: Path, tiny: Path) -> None:
        for each in setups:
            each(tmp, tiny)

    return setup


def _copy_model(name: str, edit=None):
    """The tiny model's config and tokenizer (no weights) in ``{tmp}/name``, then ``edit(folder)``."""

    def setup(tmp: Path, tiny: Path) -> None:
        folder = tmp / name
        folder.mkdir()
        for path in tiny.iterdir():
            if path.is_file() and not path.name.endswith(".safetensors"):
                (folder / path.name).write_bytes(path.read_bytes())
        if edit is not None:
            edit(folder)

    return setup


class _CreatesMarker:
    """Unpickling this calls ``open(path, "w")``: what a code-carrying checkpoint file could do with any callable."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def _checkpoint(crafted: str = "", content=None):
    """``{tmp}/ckpt/checkpoint-2``: a checkpoint folder whose file ``crafted`` names a callable (or holds
    ``content``)."""

    def setup(tmp: Path, tiny: Path) -> None:
        import torch

        folder = tmp / "ckpt" / "checkpoint-2"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text("{}", encoding="utf-8")
        if crafted and content is None:
            torch.save({"state": {}, "payload": _CreatesMarker(tmp / "pwned")}, folder / crafted)
        elif crafted:
            (folder / crafted).write_bytes(content)

    return setup


RESUME = ("--resume_from_checkpoint", "{tmp}/ckpt/checkpoint-2", "--resume_with_changed_arguments", "True")
REFUSED = r"refused to read .*checkpoint-2/{}: it holds more than {} \(it names .*io\.open"
RECIPE_ENV = {"MODEL_PATH": "{tiny}", "OUTDIR": "{tmp}/out", "HF_HUB_OFFLINE": "1"}
RUN_LOG = ("out",)  # the recipe creates the run folder and its train.log before the run refuses
TORCHRUN_ENV = {**RECIPE_ENV, "NPROC": "2"}

DATA = [
    FaultCase("missing train file", "data", train(train_file="{tmp}/nope.jsonl"), r"nope\.jsonl"),
    FaultCase(
        "missing alignment file",
        "data",
        train("--alignment_file", "{tmp}/nope.tsv"),
        r"--alignment_file .*nope\.tsv: no such file",
    ),
    FaultCase(
        "missing validation file",
        "data",
        train("--validation_file", "{tmp}/dev.json", "--do_eval"),
        r"--validation_file .*dev\.json: no such file",
    ),
    FaultCase("train file is a folder", "data", train(train_file="{tmp}"), r"--train_file .*: not a file"),
    FaultCase(
        "non-UTF-8 byte",
        "data",
        train(train_file="{tmp}/latin1.jsonl"),
        r"latin1\.jsonl:2: not UTF-8 \(byte 0xe9 at column 16\)",
        setup=_write("latin1.jsonl", b'{"prefix": "a", "text": "b"}\n{"prefix": "caf\xe9", "text": "x"}\n'),
    ),
    FaultCase(
        "non-UTF-8 byte in a JSON array",
        "data",
        train(train_file="{tmp}/array.json"),
        r"array\.json:3: not UTF-8 \(byte 0xff\)",
        setup=_write("array.json", b'[\n{"prefix": "a",\n "text": "\xff"}\n]\n'),
    ),
    FaultCase(
        "empty file",
        "data",
        train(train_file="{tmp}/empty.json"),
        r"empty\.json: the file holds no records",
        setup=_write("empty.json", ""),
    ),
    FaultCase(
        "blank lines only",
        "data",
        train(train_file="{tmp}/blank.json"),
        r"blank\.json: the file holds no records",
        setup=_write("blank.json", "\n\n"),
    ),
    FaultCase(
        "malformed JSON line",
        "data",
        train(train_file="{tmp}/bad.json"),
        r"bad\.json:2: malformed JSON",
        setup=_write("bad.json", '{"prefix": "a", "text": "b"}\n{"prefix": "a", "text": \n'),
    ),
    FaultCase(
        "missing field",
        "data",
        train("--training_mode", "task", train_file="{tmp}/bad.json"),
        r"bad\.json:2: missing field 'text'",
        setup=_write("bad.json", '{"prefix": "a", "text": "b"}\n{"prefix": "a"}\n'),
    ),
    FaultCase(
        "number where text belongs",
        "data",
        train("--training_mode", "task", train_file="{tmp}/bad.json"),
        r"bad\.json:2: field 'text' must be a string, got int",
        setup=_write("bad.json", '{"prefix": "a", "text": "b"}\n{"prefix": "a", "text": 42}\n'),
    ),
    FaultCase(
        "number in a pair",
        "data",
        train("--alignment_file", "{tmp}/pairs.jsonl", "--per_device_train_batch_size", "2"),
        r"pairs\.jsonl:1: field 'text_parallel_1' must be a string, got float",
        setup=_jsonl("pairs.jsonl", [{"text_parallel_0": "drei Komma fünf", "text_parallel_1": 3.5}]),
    ),
    FaultCase(
        "every record skipped",
        "data",
        train("--training_mode", "task", train_file="{tmp}/all_empty.json"),
        r"all_empty\.json: every task record was skipped",
        setup=_write("all_empty.json", '{"prefix": "a", "text": " "}\n{"prefix": "b", "text": ""}\n'),
    ),
    FaultCase(
        "every prompt fills the block",
        "data",
        train("--block_size", "4", "--per_device_train_batch_size", "2", train_file=ROWS),
        r"rows\.json:1 and every other task record: the prompt fills --block_size 4",
        setup=_rows(),
    ),
    FaultCase(
        "bad pairs file",
        "data",
        train("--alignment_file", "{tmp}/pairs.tsv"),
        r"pairs\.tsv:2: expected 2 tab-separated columns",
        setup=_write("pairs.tsv", "uno\tone\ndos\n"),
    ),
    FaultCase(
        "no pairs for alignment",
        "data",
        train("--alternate_training", train_file=ROWS),
        r"rows\.json: mode 'alternate' needs parallel pairs",
        setup=_rows(pairs=False),
    ),
    FaultCase(
        "ten identical pairs",
        "data",
        train("--alternate_training", "--per_device_train_batch_size", "2", train_file="{tmp}/same.jsonl"),
        r"same\.jsonl: the pairs stream has 1 example\(s\) \(after removing 9 repeated ones\), fewer than one "
        r"global batch \(2 per device × 1 process\)",
        setup=_jsonl(
            "same.jsonl", [{"prefix": "q", "text": "a", "text_parallel_0": "ja", "text_parallel_1": "yes"}] * 10
        ),
    ),
    FaultCase(
        "pair stream smaller than one batch",
        "data",
        train("--alternate_training", "--per_device_alignment_batch_size", "16", train_file=ROWS),
        r"rows\.json: the pairs stream has 8 example\(s\), fewer than one global batch \(16 per device × 1 process\): "
        r"add data or lower --per_device_alignment_batch_size",
        setup=_rows(),
    ),
    FaultCase(
        "unknown data schema",
        "data",
        train("--data_schema", "csv"),
        r"--data_schema csv: choose one of auto, task, task\+pairs",
    ),
]


def setting(name, flag, value, cause, *extra):
    return FaultCase(name, "settings", train(flag, value, *extra), cause)


SETTINGS = [
    setting(
        "alignment layer 0", "--additional_loss_layer", "0", r"additional_loss_layer=0 is out of range: .*4 decoder"
    ),
    setting("alignment layer above the depth", "--additional_loss_layer", "5", r"layer must be between 1 and 4"),
    setting("temperature 0", "--contrastive_loss_temperature", "0", r"contrastive_loss_temperature must be > 0"),
    setting("unknown distance", "--distance_function", "cos", r"distance_function='cos' is not supported; choose one"),
    setting("unknown pooling", "--contrastive_pooling_type", "avg", r"contrastive_pooling_type='avg' is not supported"),
    setting("unknown direction", "--contrastive_direction", "both", r"contrastive_direction='both' is not supported"),
    setting("negative pooling skip", "--contrastive_pooling_skip_first", "-1", r"skip_first must be an integer >= 0"),
    setting(
        "joint and alternate modes",
        "--training_mode",
        "joint",
        r"--training_mode joint contradicts --alternate_training \(mode 'alternate'\): give one of them",
        "--alternate_training",
    ),
    setting(
        "two reference mode flags",
        "--alternate_training",
        "True",
        r"--alternate_training, --only_train_language_modeling and --only_train_contrastive exclude each other",
        "--only_train_contrastive",
    ),
    setting("unknown training mode", "--training_mode", "both", r"--training_mode 'both': choose one of alternate"),
    setting(
        "no alignment step per task step",
        "--alignment_steps_per_task_step",
        "0",
        r"--alignment_steps_per_task_step is 0; it must be at least 1",
        "--alternate_training",
    ),
    setting(
        "alignment steps outside alternate mode",
        "--alignment_steps_per_task_step",
        "2",
        r"--alignment_steps_per_task_step 2 applies to the alternate mode only, but the mode is 'joint'",
    ),
    setting(
        "one pair per batch",
        "--per_device_train_batch_size",
        "1",
        r"at least 2 pairs per contrastive batch, but --per_device_train_batch_size is 1",
    ),
    setting(
        "one pair per alignment batch",
        "--per_device_alignment_batch_size",
        "1",
        r"at least 2 pairs per contrastive batch, but --per_device_alignment_batch_size is 1",
    ),
    setting("unknown contrastive data mode", "--contrastive_data_mode", "1", r"--contrastive_data_mode 1: supported"),
    setting(
        "data mode 0 with alignment",
        "--contrastive_data_mode",
        "0",
        r"--contrastive_data_mode 0 has no pairs, but the training mode is 'alternate'",
        "--alternate_training",
    ),
    setting("streaming without max_steps", "--streaming", "True", r"--streaming .* pass --max_steps"),
    setting("unknown dtype", "--torch_dtype", "bf16", r"--torch_dtype: unknown dtype 'bf16'"),
    setting("unknown attention kernel", "--attn_implementation", "flash", r"--attn_implementation flash: choose one"),
    setting("lora config without use_lora", "--lora_config", "config/lora_config.json", r"--lora_config .*--use_lora"),
    setting("use_lora without a config", "--use_lora", "True", r"--use_lora needs --lora_config"),
    setting(
        "lora targets of another architecture",
        "--use_lora",
        "True",
        r"target_modules dense, dense_4h_to_h, dense_h_to_4h, query_key_value do not exist in this llama model",
        "--lora_config",
        "config/lora_config_bloom.json",
    ),
    FaultCase(
        "malformed lora config",
        "settings",
        train("--use_lora", "True", "--lora_config", "{tmp}/lora.json"),
        r"lora\.json:3: malformed JSON",
        setup=_write("lora.json", '{\n  "r": 8,\n  "lora_alpha": ,\n}\n'),
    ),
    FaultCase(
        "unknown adapter type",
        "settings",
        train("--use_lora", "True", "--lora_config", "{tmp}/lora.json"),
        r"lora\.json: peft_type 'PREFIX' is not supported; use LORA or IA3",
        setup=_write("lora.json", '{"peft_type": "prefix", "target_modules": ["q_proj"]}'),
    ),
    FaultCase(
        "unknown lora field",
        "settings",
        train("--use_lora", "True", "--lora_config", "{tmp}/lora.json"),
        r"lora\.json: not a valid LORA config .*rank",
        setup=_write("lora.json", '{"rank": 8, "target_modules": ["q_proj"]}'),
    ),
    setting(
        "missing adapter to start from",
        "--use_lora",
        "True",
        r"--load_lora_from .*nope: no such folder",
        "--load_lora_from",
        "{tmp}/nope",
    ),
    setting("nothing to do", "--do_train", "False", r"nothing to do: pass --do_train and/or --do_eval"),
]

RUNS = [
    FaultCase("missing model folder", "runs", train("--model_name_or_path", "{tmp}/model"), r"model: no such folder"),
    FaultCase(
        "truncated model config",
        "runs",
        train("--model_name_or_path", "{tmp}/model"),
        r"model/config\.json is not valid JSON .*truncated",
        setup=_copy_model("model", lambda folder: (folder / "config.json").write_bytes(b'{"model_type": "lla')),
    ),
    FaultCase(
        "model folder without a config",
        "runs",
        train("--model_name_or_path", "{tmp}/model"),
        r"model has no config\.json: it is not a Hugging Face model folder",
        setup=_copy_model("model", lambda folder: (folder / "config.json").unlink()),
    ),
    FaultCase(
        "unsupported model type",
        "runs",
        train("--model_name_or_path", "{tmp}/model"),
        r"model type 'gpt2' is not supported; supported model types: bloom, llama, qwen2, xglm",
        setup=_copy_model("model", lambda folder: (folder / "config.json").write_text('{"model_type": "gpt2"}')),
    ),
    FaultCase(
        "output folder is a file",
        "runs",
        train("--output_dir", "{tmp}/notes.txt"),
        r"--output_dir .*notes\.txt: is a file",
        setup=_write("notes.txt", "mine"),
    ),
    FaultCase(
        "output folder not empty",
        "runs",
        train(),
        r"output folder .*out is not empty",
        setup=_write("out/notes.txt", "mine"),
    ),
    FaultCase(
        "output folder holds the train file",
        "runs",
        train("--output_dir", "{tmp}/data", "--overwrite_output_dir", "True", train_file="{tmp}/data/rows.json"),
        r"--output_dir .*data contains the --train_file input .*rows\.json",
        setup=_both(
            _rows(), lambda tmp, tiny: (tmp / "data").mkdir() or (tmp / "rows.json").rename(tmp / "data/rows.json")
        ),
    ),
    FaultCase("missing deepspeed config", "runs", train("--deepspeed", "{tmp}/ds.json"), r"ds\.json"),
    FaultCase(
        "recipe with alignment layer 0",
        "runs",
        recipe("train_with_alignment"),
        r"additional_loss_layer=0 is out of range",
        env={**RECIPE_ENV, "LOSS_LAYER": "0"},
        may_create=RUN_LOG,
    ),
    FaultCase(
        "recipe with another architecture's lora config",
        "runs",
        recipe("train_with_alignment"),
        r"target_modules .* do not exist in this llama model",
        env={**RECIPE_ENV, "LORA_CONFIG": "config/lora_config_xglm.json"},
        may_create=RUN_LOG,
    ),
    FaultCase(
        "recipe with a missing train file",
        "runs",
        recipe("train_baseline"),
        r"--train_file .*nope\.json: no such file",
        env={**RECIPE_ENV, "TRAIN_FILES": "{tmp}/nope.json"},
        may_create=RUN_LOG,
    ),
    FaultCase(
        "recipe with a missing model folder",
        "runs",
        recipe("train_baseline"),
        r"model: no such folder",
        env={**RECIPE_ENV, "MODEL_PATH": "{tmp}/model"},
        may_create=RUN_LOG,
    ),
    FaultCase(
        "recipe with an unknown precision",
        "runs",
        recipe("train_baseline"),
        r"PRECISION=fp8: expected auto, bf16, fp16 or fp32",
        env={**RECIPE_ENV, "PRECISION": "fp8"},
    ),
    FaultCase(
        "recipe with a bad OVERWRITE",
        "runs",
        recipe("train_baseline"),
        r"OVERWRITE=yes: expected 1 or 0",
        env={**RECIPE_ENV, "OVERWRITE": "yes"},
    ),
]

RESUMES = [
    FaultCase(
        "resume from a missing checkpoint",
        "resumes",
        train("--resume_from_checkpoint", "{tmp}/checkpoint-9"),
        r"checkpoint-9: not a complete checkpoint \(no such folder\)",
    ),
    FaultCase(
        "resume from a folder that is no checkpoint",
        "resumes",
        train("--resume_from_checkpoint", "{tmp}/ckpt"),
        r"ckpt: not a complete checkpoint \(no trainer_state\.json in it\)",
        setup=_write("ckpt/notes.txt", "mine"),
    ),
    FaultCase(
        "resume with other run arguments",
        "resumes",
        train("--resume_from_checkpoint", "{tmp}/ckpt/checkpoint-2"),
        r"alignment_run_args\.json is missing, so the checkpoint cannot be checked .*--resume_with_changed_arguments",
        setup=_checkpoint(),
    ),
    FaultCase(
        "code-carrying optimizer state",
        "resumes",
        train(*RESUME),
        REFUSED.format(r"optimizer\.pt", "an optimizer state"),
        setup=_checkpoint("optimizer.pt"),
    ),
    FaultCase(
        "code-carrying scheduler state",
        "resumes",
        train(*RESUME),
        REFUSED.format(r"scheduler\.pt", "a learning-rate scheduler state"),
        setup=_checkpoint("scheduler.pt"),
    ),
    FaultCase(
        "code-carrying training arguments",
        "resumes",
        train(*RESUME),
        REFUSED.format(r"training_args\.bin", "training arguments"),
        setup=_checkpoint("training_args.bin"),
    ),
    FaultCase(
        "code-carrying RNG state",
        "resumes",
        train(*RESUME),
        REFUSED.format(r"rng_state\.pth", "an RNG state"),
        setup=_checkpoint("rng_state.pth"),
    ),
    FaultCase(
        "truncated optimizer state",
        "resumes",
        train(*RESUME),
        r"refused to read .*optimizer\.pt: not a readable torch file",
        setup=_checkpoint("optimizer.pt", b"PK\x03\x04 cut short"),
    ),
    FaultCase(
        "recipe resuming from a missing checkpoint",
        "resumes",
        recipe("train_baseline"),
        r"checkpoint-9: not a complete checkpoint \(no such folder\)",
        env={**RECIPE_ENV, "RESUME": "{tmp}/checkpoint-9"},
        may_create=RUN_LOG,
    ),
]

DISTRIBUTED = [
    FaultCase(
        "bad flag under torchrun",
        "distributed",
        recipe("train_with_alignment"),
        r"contrastive_loss_temperature must be > 0",
        env={**TORCHRUN_ENV, "LOSS_TEMPERATURE": "0"},
        may_create=RUN_LOG,
    ),
    FaultCase(
        "pair stream too small at world size 2",
        "distributed",
        recipe("train_with_alignment"),
        r"rows\.json: the pairs stream has 8 example\(s\), fewer than one global batch \(8 per device × 2 processes\)",
        setup=_rows(),
        env={**TORCHRUN_ENV, "TRAIN_FILES": ROWS, "TRAIN_BSZ": "8"},
        may_create=RUN_LOG,
    ),
]


def _before_the_model_loads(case: FaultCase) -> FaultCase:
    """The case on a copy of the tiny model without weights: a run that loaded the model would fail otherwise."""
    if case.command[:3] != python_module("run_clm_lora"):
        return case
    command = tuple("{tmp}/weightless" if part == "{tiny}" else part for part in case.command)
    setup = _copy_model("weightless") if case.setup is None else _both(_copy_model("weightless"), case.setup)
    return replace(case, command=command, setup=setup)


CASES = [_before_the_model_loads(case) for case in (*DATA, *SETTINGS, *RUNS, *RESUMES, *DISTRIBUTED)]
