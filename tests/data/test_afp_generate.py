"""AFP data generation: templates, schema, file names, determinism, counted skips and input errors."""

import json

import pytest

from scripts import generate_sup_data
from tests.support import REPO
from transformers_align.data.afp_generate import (
    build_bilingual,
    build_crosslingual,
    build_translation,
    cit_text,
    generate,
    load_bactrian,
    merge_files,
    read_translation_tsv,
)
from transformers_align.data.jsonl import DataFormatError

SAMPLES = REPO / "data_example" / "afp"
BACTRIAN = SAMPLES / "bactrian"


def bactrian(lang):
    return {r["id"]: r for r in json.loads((BACTRIAN / f"{lang}.json").read_text(encoding="utf-8"))}


def write_bactrian(folder, lang, records):
    folder.mkdir(exist_ok=True)
    (folder / f"{lang}.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")


def record(i, text, output="out", inp=""):
    return {"instruction": text, "input": inp, "id": f"id-{i}", "output": output}


def test_bilingual_templates_schema_and_pairs():
    records, skipped = build_bilingual(BACTRIAN, ["en", "zh"], cross_probability=0.5, repeat=3.0, seed=0)
    en, zh = bactrian("en"), bactrian("zh")
    assert len(records) == 90 and not skipped
    en_to_zh = {r["instruction"]: zh[i]["instruction"] for i, r in en.items()}
    outputs = {"English": {r["output"] for r in en.values()}, "Chinese": {r["output"] for r in zh.values()}}
    targets = set()
    for r in records:
        assert list(r) == ["sent0", "sent1", "clm_text", "clm_prompt_len"]
        assert en_to_zh[r["sent0"]] == r["sent1"]  # pivot first, same id
        prompt, response = r["clm_text"][: r["clm_prompt_len"]], r["clm_text"][r["clm_prompt_len"] :]
        target = prompt.rsplit("Answer in ", 1)[1][:-2]
        assert prompt.endswith(f"Answer in {target}: ") and response in outputs[target]
        targets.add(target)
    assert targets == {"English", "Chinese"}
    assert cit_text({"instruction": "Add.", "input": "7 and 5"}, "12", "German") == "Add. 7 and 5 Answer in German: 12"
    assert cit_text({"instruction": "Add.", "input": " "}, "12", "German") == "Add. Answer in German: 12"


def test_cross_probability_zero_keeps_responses_in_the_source_language():
    records, _ = build_bilingual(BACTRIAN, ["en", "zh"], cross_probability=0.0, repeat=1.0, seed=3)
    language_of = {
        r["instruction"] + " ": name
        for lang, name in (("en", "English"), ("zh", "Chinese"))
        for r in bactrian(lang).values()
    }
    for r in records:
        source = next(name for prefix, name in language_of.items() if r["clm_text"].startswith(prefix))
        assert f"Answer in {source}: " in r["clm_text"]


def test_deterministic_for_a_seed(tmp_path):
    first = generate("bilingual", ["en", "zh"], tmp_path / "a", repeat=3.0, bactrian_dir=BACTRIAN, seed=7)
    second = generate("bilingual", ["en", "zh"], tmp_path / "b", repeat=3.0, bactrian_dir=BACTRIAN, seed=7)
    other = generate("bilingual", ["en", "zh"], tmp_path / "c", repeat=3.0, bactrian_dir=BACTRIAN, seed=8)
    assert first.name == "AFP.en_zh.X0.5.R3.0.json"
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()


def test_translation_mode():
    records, _ = build_translation(SAMPLES / "en-zh.tsv", ["en", "zh"], change_probability=0.5, repeat=3.0, seed=0)
    pairs, _ = read_translation_tsv(SAMPLES / "en-zh.tsv")
    both_ways = set(pairs) | {(b, a) for a, b in pairs}
    assert len(records) == 150
    for r in records:
        assert (r["sent0"], r["sent1"]) in both_ways
        assert r["clm_text"] in (
            f"{r['sent0']} = {r['sent1']}",
            f"{r['sent0']} Translate into English: {r['sent1']}",
            f"{r['sent0']} Translate into Chinese: {r['sent1']}",
        )
        assert r["clm_text"][r["clm_prompt_len"] :] == r["sent1"]
    assert {r["sent0"] for r in records} & {a for a, _ in pairs} and {r["sent0"] for r in records} & {
        b for _, b in pairs
    }


def test_crosslingual_mode_and_file_names(tmp_path):
    path = generate("crosslingual", ["en", "zh", "de"], tmp_path, repeat=2.0, bactrian_dir=BACTRIAN, seed=0)
    assert path.name == "AFP.en_zh_de.X0.5.C0.5.R2.0.json"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    pivot = {r["instruction"] for r in bactrian("en").values()}
    assert len(records) == 60 and all(r["sent0"] in pivot for r in records)
    named = {r["clm_text"].rsplit("Answer in ", 1)[1].split(":")[0] for r in records}
    assert named == {"English", "Chinese", "German"}
    translation = generate(
        "translation",
        ["en", "zh"],
        tmp_path,
        change_probability=0.5,
        repeat=3.0,
        translation_file=SAMPLES / "en-zh.tsv",
    )
    assert translation.name == "AFP.en-zh-trans.C0.5.R3.0.json"
    with pytest.raises(ValueError, match="more than 2"):
        build_crosslingual(BACTRIAN, ["en", "zh"])


def test_bactrian_skips_are_counted(tmp_path):
    write_bactrian(tmp_path, "en", [record(0, "a"), record(1, "b"), record(2, "c", output=" "), record(3, "same")])
    write_bactrian(tmp_path, "zh", [record(0, "A"), record(2, "C"), record(3, "same"), record(4, "E")])
    _, ids, skipped = load_bactrian(tmp_path, ["en", "zh"])
    assert ids == ["id-0", "id-3"]
    assert skipped == {"id missing from zh": 1, "id missing from en": 1, "empty en output": 1}
    records, skipped = build_bilingual(tmp_path, ["en", "zh"], repeat=2.0)
    assert skipped["identical en/zh instructions (no contrastive pair)"] == 1
    assert len(records) == 4 and {(r["sent0"], r["sent1"]) for r in records} == {("a", "A")}


@pytest.mark.parametrize(
    "bad, message",
    [
        ([{"instruction": "a", "input": "", "output": "o"}], r"record 0: missing field 'id'"),
        ([record(0, "a"), record(0, "b")], r"record 1: duplicate id 'id-0' \(first seen at record 0\)"),
        (
            [{"instruction": 3, "input": "", "id": "x", "output": "o"}],
            r"record 0: field 'instruction' must be a string",
        ),
        ({"not": "a list"}, "expected a JSON array"),
    ],
)
def test_bactrian_format_errors_name_file_record_and_field(tmp_path, bad, message):
    write_bactrian(tmp_path, "en", bad)
    write_bactrian(tmp_path, "zh", [record(0, "A")])
    with pytest.raises(DataFormatError, match=message) as error:
        load_bactrian(tmp_path, ["en", "zh"])
    assert "en.json" in str(error.value)


def test_translation_tsv_errors_and_skips(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("one\tun\n\n\tvide\ntwo\tdeux\n", encoding="utf-8")
    pairs, skipped = read_translation_tsv(tsv)
    assert pairs == [("one", "un"), ("two", "deux")] and skipped == {"empty source": 1}
    tsv.write_text("one\tun\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"pairs.tsv:2: expected 2 tab-separated columns, found 1"):
        read_translation_tsv(tsv)


def test_unknown_language_and_bad_probability():
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        build_bilingual(BACTRIAN, ["en", "xx"])
    with pytest.raises(ValueError, match="cross_probability must be between 0 and 1"):
        build_bilingual(BACTRIAN, ["en", "zh"], cross_probability=1.5)


def test_script_reproduces_the_shipped_training_file(tmp_path):
    common = ["--languages", "en", "zh", "--repeat", "3", "--output-dir", str(tmp_path), "--seed", "0"]
    generate_sup_data.main(
        ["--mode", "bilingual", "--cross-probability", "0.5", "--bactrian-dir", str(BACTRIAN)] + common
    )
    generate_sup_data.main(
        ["--mode", "translation", "--change-probability", "0.5", "--translation-file", str(SAMPLES / "en-zh.tsv")]
        + common
    )
    merged = tmp_path / "AFP.en_zh.train.json"
    generate_sup_data.main(
        [
            "--mode",
            "merge",
            "--inputs",
            str(tmp_path / "AFP.en_zh.X0.5.R3.0.json"),
            str(tmp_path / "AFP.en-zh-trans.C0.5.R3.0.json"),
            "--output-file",
            str(merged),
            "--seed",
            "0",
        ]
    )
    assert merged.read_bytes() == (SAMPLES / "AFP.en_zh.train.json").read_bytes()
    again = merge_files([merged], tmp_path / "again.json", seed=0)
    assert sorted(again.read_text(encoding="utf-8").splitlines()) == sorted(
        merged.read_text(encoding="utf-8").splitlines()
    )
