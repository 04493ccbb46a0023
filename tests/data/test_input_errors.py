"""Bad training input, as a user meets it at the command line: one line naming file, line and field, exit code 2, no
traceback, and no model loaded (the model folder here has a config and a tokenizer but no weights). The messages
come from data/jsonl.py and data/records.py."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO
from tests.support.training import write_rows


@pytest.fixture(scope="module")
def weightless_model(tmp_path_factory):
    from transformers_align.tiny import build_tiny_model

    folder = tmp_path_factory.mktemp("weightless") / "model"
    shutil.copytree(build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny"), folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    return folder


def cases(folder):
    """(name, train file, extra arguments, expected one-line message)."""
    rows = write_rows(folder / "rows.json", n=4)
    write_rows(folder / "task_only.json", n=4, pairs=False)
    (folder / "latin1.jsonl").write_bytes(rows.read_bytes() + '{"prefix": "caf\xe9", "text": "x"}\n'.encode("latin-1"))
    (folder / "empty.json").write_text("", encoding="utf-8")
    (folder / "blank.json").write_text("\n\n", encoding="utf-8")
    (folder / "all_empty.json").write_text(
        '{"prefix": "a", "text": " "}\n{"prefix": "b", "text": ""}\n', encoding="utf-8"
    )
    (folder / "pairs.tsv").write_text("uno\tone\ndos\n", encoding="utf-8")
    (folder / "array.json").write_bytes(b'[\n{"prefix": "a",\n "text": "\xff"}\n]\n')
    return [
        ("non-UTF-8 byte", "latin1.jsonl", [], r"latin1.jsonl:5: not UTF-8 \(byte 0xe9 at column 16\)"),
        ("non-UTF-8 byte in a JSON array", "array.json", [], r"array.json:3: not UTF-8 \(byte 0xff\)"),
        ("empty file", "empty.json", [], r"empty.json: the file holds no records"),
        ("blank lines only", "blank.json", [], r"blank.json: the file holds no records"),
        (
            "every record skipped",
            "all_empty.json",
            ["--training_mode", "task"],
            r"all_empty.json: every task record was skipped",
        ),
        (
            "every prompt fills the block",
            "rows.json",
            ["--block_size", "16"],
            r"rows.json:1 and every other task record: the prompt fills --block_size 16",
        ),
        (
            "one pair per batch",
            "rows.json",
            ["--per_device_train_batch_size", "1"],
            r"alignment needs at least 2 pairs per contrastive batch, but --per_device_train_batch_size is 1",
        ),
        (
            "one pair per alignment batch",
            "rows.json",
            ["--per_device_alignment_batch_size", "1"],
            r"alignment needs at least 2 pairs per contrastive batch, but --per_device_alignment_batch_size is 1",
        ),
        (
            "no alignment step per task step",
            "rows.json",
            ["--alignment_steps_per_task_step", "0"],
            r"--alignment_steps_per_task_step is 0; it must be at least 1",
        ),
        (
            "alignment steps per task step outside alternate mode",
            "rows.json",
            ["--training_mode", "joint", "--alignment_steps_per_task_step", "2"],
            r"--alignment_steps_per_task_step 2 applies to the alternate mode only, but the mode is 'joint'",
        ),
        (
            "bad pairs file",
            "rows.json",
            ["--alignment_file", str(folder / "pairs.tsv")],
            r"pairs.tsv:2: expected 2 tab-separated columns",
        ),
        ("missing file", "nowhere.json", [], r"nowhere.json: no such file"),
        ("no pairs for alignment", "task_only.json", [], r"task_only.json: mode 'alternate' needs parallel pairs"),
    ]


SUBPROCESS = (
    "non-UTF-8 byte",
    "empty file",
    "every record skipped",
    "one pair per batch",
)  # the rest run main() in-process


def arguments(folder, model, train_file, extra):
    return [
        "--model_name_or_path",
        str(model),
        "--train_file",
        str(folder / train_file),
        "--output_dir",
        str(folder / "out"),
        "--do_train",
        "--alternate_training",
        "--per_device_train_batch_size",
        "2",
        "--report_to",
        "none",
        "--block_size",
        "256",
        *extra,
    ]


def check(name, message, returncode, stderr, stdout=""):
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    assert returncode == 2, f"{name}: exit {returncode}\n{stderr[-2000:]}"
    assert "Traceback" not in stderr and "safetensors" not in stderr + stdout, f"{name}:\n{stderr[-2000:]}"
    assert last.startswith("run_clm_lora: error: ") and re.search(message, last), f"{name}: {last}"


def test_bad_input_at_the_command_line_is_one_line_and_exit_code_2(weightless_model, tmp_path):
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        HF_DATASETS_CACHE=str(tmp_path / "cache"),
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    runs = [
        (
            name,
            message,
            subprocess.Popen(
                [sys.executable, "-m", "scripts.run_clm_lora", *arguments(tmp_path, weightless_model, f, extra)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for name, f, extra, message in cases(tmp_path)
        if name in SUBPROCESS
    ]
    for name, message, process in runs:  # started together: the cores load Python for several at once
        stdout, stderr = process.communicate(timeout=600)
        check(name, message, process.returncode, stderr, stdout)


def test_every_other_bad_input_through_main(weightless_model, tmp_path, capsys, datasets_cache):
    from scripts.run_clm_lora import main

    for name, train_file, extra, message in cases(tmp_path):
        if name in SUBPROCESS:
            continue
        with pytest.raises(SystemExit) as stopped:
            main(arguments(tmp_path, weightless_model, train_file, extra))
        captured = capsys.readouterr()
        check(name, message, stopped.value.code, captured.err, captured.out)


def test_tsv_rows_name_file_line_and_columns(tmp_path):
    """The one TSV reader (pairs, ICL sets, MGSM): header and blank lines pass, a bad line names file,
    line and columns."""
    from transformers_align.data.jsonl import DataFormatError
    from transformers_align.data.records import iter_tsv_rows

    path = tmp_path / "rows.tsv"
    path.write_bytes(b"question\tanswer\n\nhow\tmany?\t3\r\nplain\t4\n")
    assert list(iter_tsv_rows(path, ("question", "answer"), header=True, tabs_in_first=True)) == [
        (3, ["how\tmany?", "3"]),
        (4, ["plain", "4"]),
    ]
    with pytest.raises(
        DataFormatError, match=r"rows.tsv:3: expected 2 tab-separated columns, found 3 \(question<TAB>answer\)"
    ):
        list(iter_tsv_rows(path, ("question", "answer"), header=True))
    path.write_bytes(b"ok\tfine\nbad\t\xff\n")
    with pytest.raises(DataFormatError, match=r"rows.tsv:2: not UTF-8"):
        list(iter_tsv_rows(path, ("a", "b")))
    with pytest.raises(DataFormatError, match=r"missing.tsv: no such file"):
        list(iter_tsv_rows(tmp_path / "missing.tsv", ("a", "b")))
