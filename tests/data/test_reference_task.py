"""AdaMergeX reference-task data: windows per word and per character, record layout, determinism, bad input."""

import json

import pytest

from scripts import construct_dataset_lm
from tests.support import REPO
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.reference_task import build_reference_task, default_unit, split_units

WIKI = REPO / "data_example" / "adamergex" / "wiki"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_unit_follows_the_language_code():
    assert [default_unit(code) for code in ("en", "sw", "zh", "zh-CN", "ja_JP", "th", "yue")] == [
        "word",
        "word",
        "char",
        "char",
        "char",
        "char",
        "char",
    ]
    with pytest.raises(ValueError, match="language code"):
        default_unit("")


def test_word_windows_span_lines_and_split_into_prompt_and_completion(tmp_path):
    source = write(tmp_path / "en.txt", "one two three\n\nfour five\nsix seven eight nine ten eleven\n")
    records, stats = build_reference_task([source], "en", chunk_size=4, prompt_units=3)
    assert records == [
        {"prompt": "one two three", "completion": " four"},
        {"prompt": "five six seven", "completion": " eight"},
    ]
    assert (stats.unit, stats.documents, stats.chunks, stats.units_dropped) == ("word", 3, 2, 3)
    default, _ = build_reference_task([source], "en", chunk_size=4)
    assert default[0] == {"prompt": "one", "completion": " two three four"}
    whole, _ = build_reference_task([source], "en", chunk_size=4, prompt_units=0)
    assert whole[0] == {"prompt": "", "completion": "one two three four"}


def test_character_windows_for_unspaced_languages(tmp_path):
    source = write(tmp_path / "zh.txt", "猴面包树很大。\n它储存水。\n")
    records, stats = build_reference_task([source], "zh", chunk_size=5, prompt_units=4)
    assert stats.unit == "char"
    # The two lines are joined by one space, which counts as a character.
    assert [r["prompt"] + r["completion"] for r in records] == ["猴面包树很", "大。 它储"]
    assert records[0] == {"prompt": "猴面包树", "completion": "很"}
    assert stats.units_dropped == 3
    words, _ = build_reference_task([source], "zh", chunk_size=1, prompt_units=0, unit="word")
    assert words[0]["completion"] == "猴面包树很大。"


def test_character_units_keep_combining_marks_and_squeeze_spaces():
    assert split_units("กิน  ข้าว", "char") == ["กิ", "น", " ", "ข้", "า", "ว"]
    assert split_units(" a\t\nb ", "char") == ["a", " ", "b"]


def test_json_lines_input_and_field_names(tmp_path):
    source = write(tmp_path / "sw.jsonl", '{"text": "moja mbili tatu"}\n\n{"text": "nne tano sita", "id": 2}\n')
    records, stats = build_reference_task(
        [source], "sw", chunk_size=2, prompt_units=1, prompt_field="prefix", completion_field="text", max_chunks=2
    )
    assert records == [{"prefix": "moja", "text": " mbili"}, {"prefix": "tatu", "text": " nne"}]
    assert stats.stopped_at_max_chunks and stats.units_dropped == 0
    body, _ = build_reference_task(
        [write(tmp_path / "b.jsonl", '{"body": "a b"}\n')], "en", chunk_size=2, text_field="body"
    )
    assert body == [{"prompt": "a", "completion": " b"}]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.jsonl", '{"text": "a b"}\n{"text": \n', r"bad.jsonl:2: malformed JSON"),
        ("field.jsonl", '{"text": "a b"}\n{"title": "x"}\n', r"field.jsonl:2: missing field 'text'"),
        ("type.jsonl", '{"text": ["a"]}\n', r"type.jsonl:1: field 'text' must be a string"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, name, content, message):
    with pytest.raises(DataFormatError, match=message):
        build_reference_task([write(tmp_path / name, content)], "en", chunk_size=2)


def test_bad_input_is_a_clear_error(tmp_path):
    source = write(tmp_path / "en.txt", "a b c\n")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1.txt:2: not UTF-8"):
        build_reference_task([latin1], "en", chunk_size=2)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        build_reference_task([tmp_path / "missing.txt"], "en")
    with pytest.raises(ValueError, match="fewer than 4 words"):
        build_reference_task([source], "en", chunk_size=4)
    with pytest.raises(ValueError, match="prompt_units"):
        build_reference_task([source], "en", chunk_size=3, prompt_units=3)
    with pytest.raises(ValueError, match="unknown unit"):
        build_reference_task([source], "en", unit="token")


def test_script_is_deterministic_on_the_shipped_samples(tmp_path, capsys):
    outputs = []
    for run in range(2):
        out = tmp_path / f"sw_{run}.json"
        construct_dataset_lm.main(
            [
                "--input",
                str(WIKI / "sw.txt"),
                "--language",
                "sw",
                "--chunk-size",
                "64",
                "--prompt-units",
                "63",
                "--output",
                str(out),
            ]
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    records = json.loads(outputs[0])
    assert len(records) == json.loads(capsys.readouterr().out.splitlines()[-1])["chunks"] > 3
    assert all(len(r["prompt"].split()) == 63 and len(r["completion"].split()) == 1 for r in records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sw_0.json", "sw_1.json"]
