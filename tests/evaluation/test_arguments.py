"""What the evaluation scripts check before anything loads: the model folder, the adapter and the base model it
names (or its portable name, on another machine), and the one generation limit of MASSIVE predictions."""

import inspect
import json
import shutil

import pytest
from peft import PeftConfig
from transformers import AutoConfig

from scripts import report_alignment_run, run_inference_massive
from tests.support import REPO
from tests.support.adapters import write_lora
from transformers_align.data.massive import format_target, read_massive_jsonl
from transformers_align.errors import UserError
from transformers_align.evaluation import run_report
from transformers_align.evaluation.arguments import EvaluationModelArguments
from transformers_align.evaluation.massive import MASSIVE_MAX_NEW_TOKENS
from transformers_align.modeling.gguf_checkpoint import BASE_MODEL_RECORD, CACHE_NAME, PORTABLE_NAME, record_base_model
from transformers_align.modeling.loading import ModelLoadingError, read_config


def test_a_model_folder_gives_its_config_without_loading_weights(tiny_model_dir):
    assert (
        read_config(str(tiny_model_dir), local_files_only=True).to_dict()
        == AutoConfig.from_pretrained(tiny_model_dir).to_dict()
    )


def test_a_model_folder_that_cannot_be_read_is_one_line_naming_the_flag(tiny_model_dir, tmp_path):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text((tiny_model_dir / "config.json").read_text()[:50])
    adapter = write_lora(tmp_path / "adapter", tiny_model_dir)
    cases = {
        str(tmp_path / "missing"): "no such folder",
        str(truncated): "truncated/config.json is not valid JSON.*the file may be truncated",
        str(adapter): "has no config.json: .*an adapter, not a base model",
        str(adapter / "adapter_config.json"): "is a file",
    }
    for path, message in cases.items():
        with pytest.raises(ModelLoadingError, match=f"^--base {path}.*{message}") as error:
            read_config(path, "--base", local_files_only=True)
        assert "\n" not in str(error.value)


def test_the_base_model_comes_from_the_adapter_when_not_given(tiny_model_dir, tmp_path, capsys):
    adapter = write_lora(tmp_path / "adapter", tiny_model_dir)
    model = EvaluationModelArguments(peft_model_id=str(adapter))
    model.check()
    assert model.model_name_or_path == PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path
    assert f"base model (from --peft_model_id {adapter}): {tiny_model_dir}" in capsys.readouterr().out


def test_a_given_base_model_wins_and_a_missing_one_is_one_line(tiny_model_dir, tmp_path):
    adapter = write_lora(tmp_path / "adapter", tiny_model_dir, base_name="/elsewhere/base")
    given = EvaluationModelArguments(model_name_or_path=str(tiny_model_dir), peft_model_id=str(adapter))
    given.check()
    assert given.model_name_or_path == str(tiny_model_dir)
    with pytest.raises(UserError, match="names the base model '/elsewhere/base'.*pass --model_name_or_path"):
        EvaluationModelArguments(peft_model_id=str(adapter)).check()


def test_only_a_conversion_gets_a_portable_name(tiny_model_dir, tmp_path):
    assert record_base_model(tmp_path, tiny_model_dir) is None
    assert not (tmp_path / BASE_MODEL_RECORD).exists()


def test_an_adapter_on_the_embedded_model_finds_it_after_the_cache_moved(smollm2_dir, tmp_path, monkeypatch):
    """Trained on a conversion in one cache; the cache is then renamed (or the adapter copied to another machine,
    whose cache is elsewhere): the adapter's absolute path is gone, its portable name finds the conversion."""
    old_cache = tmp_path / "old-cache" / CACHE_NAME
    old_cache.parent.mkdir()
    old_cache.symlink_to(smollm2_dir, target_is_directory=True)
    adapter = write_lora(tmp_path / "adapter", old_cache)
    assert json.loads(record_base_model(adapter, old_cache).read_text())["portable_name"] == PORTABLE_NAME
    new_root = tmp_path / "new-cache"
    new_root.mkdir()
    old_cache.rename(new_root / CACHE_NAME)
    shutil.rmtree(tmp_path / "old-cache")
    monkeypatch.setenv("TRANSFORMERS_ALIGN_CACHE", str(new_root))
    model = EvaluationModelArguments(peft_model_id=str(adapter))
    model.check()
    assert model.model_name_or_path == str(new_root / CACHE_NAME)


def test_massive_predictions_have_one_limit_that_cuts_no_gold_answer(tokenizer):
    """The byte-level tiny tokenizer spends the most tokens per answer (one a byte): every gold answer of
    data_example/massive, with and without its intent, plus EOS, fits in the limit."""
    longest = 0
    for path in sorted((REPO / "data_example" / "massive").glob("*.jsonl")):
        for record in read_massive_jsonl(path):
            for intent in {None, record.intent}:
                ids = tokenizer(format_target(record.slots, intent), add_special_tokens=False)["input_ids"]
                longest = max(longest, len(ids) + 1)
    assert longest <= MASSIVE_MAX_NEW_TOKENS
    assert inspect.signature(run_report.alignment_run_report).parameters["max_new_tokens"].default == (
        MASSIVE_MAX_NEW_TOKENS
    )
    assert report_alignment_run.parse_args(["--adapter", "a", "--pairs", "p"]).max_new_tokens == MASSIVE_MAX_NEW_TOKENS
    generation = run_inference_massive.parse_args(["--model_name_or_path", "m"])[2]
    assert generation.max_new_tokens == MASSIVE_MAX_NEW_TOKENS
