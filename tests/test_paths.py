"""No command writes over its own input: an output path that is one of its inputs (also through a symbolic link or
``..``) or a folder holding one is refused. Each writing command's refusal, run as a user runs it, is a case of
the fault battery (tests/faults/cases_outputs.py)."""

import pytest

from transformers_align.paths import OutputOverInputError, refuse_output_over_inputs


def test_equal_paths_are_refused_through_links_and_dots(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(data)
    for output in (data, tmp_path / "link.jsonl", tmp_path / "sub" / ".." / "data.jsonl"):
        with pytest.raises(OutputOverInputError, match=r"^--out .* is the --data input"):
            refuse_output_over_inputs({"--out": output}, {"--data": str(data)})


def test_a_folder_holding_an_input_is_refused_and_a_file_beside_it_is_not(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train.json").write_text("[]")
    with pytest.raises(OutputOverInputError, match=r"--output_dir .* contains the --train_file input"):
        refuse_output_over_inputs({"--output_dir": tmp_path}, {"--train_file": [tmp_path / "run" / "train.json"]})
    refuse_output_over_inputs({"--output": tmp_path / "run" / "other.json"}, {"--input": tmp_path / "run"})
    refuse_output_over_inputs({"--output": tmp_path / "run" / "new"}, {"--input": tmp_path / "run" / "train.json"})


def test_absent_inputs_and_outputs_are_not_compared(tmp_path):
    # A hub id is not a file that could be overwritten; an optional output not given writes nothing.
    refuse_output_over_inputs({"--output_dir": tmp_path}, {"--model_name_or_path": "meta-llama/Llama-3-8B"})
    refuse_output_over_inputs({"--output_json": None}, {"--data": tmp_path})
