"""MASSIVE data and scoring: hand-computed metrics, id matching, malformed parts, zh/ja segmentation, format errors
(evaluation/massive.py, and data/massive.py, which the scoring reads its gold data with)."""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.support import REPO
from transformers_align.data.chat import chat_prompt
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.massive import (
    MASSIVE_LANG_MAP,
    SYSTEM_PROMPT_INTENT_AND_SLOTS,
    SYSTEM_PROMPT_SLOTS,
    MassiveRecord,
    format_target,
    load_massive,
    parse_annotation,
    read_massive_jsonl,
    resolve_locale,
    training_records,
)
from transformers_align.evaluation.counts import MissingPredictionsError
from transformers_align.evaluation.massive import (
    gold_tags,
    parse_prediction,
    read_predictions,
    score_predictions,
    segment,
)
from transformers_align.tiny import byte_level_tokenizer

SAMPLE = REPO / "data_example" / "massive"


def record(id_, annot, intent="alarm_set"):
    utt = " ".join(text for text, _ in parse_annotation(annot))
    return MassiveRecord(id=id_, locale="en-US", partition="test", utt=utt, annot_utt=annot, intent=intent)


GOLD = [
    record("1", "wake me up at [time : five am] [date : this week]"),
    record("2", "play [artist_name : queen]", "play_music"),
    record("3", "tell me a joke", "general_joke"),
    record("4", "what is the weather in [place_name : paris]", "weather_query"),
]
PREDICTIONS = {
    "1": "intent: alarm_set; time: five am; date: friday",  # date not in the utterance: unlocated
    "2": "intent: play_music; artist_name: Queen",  # case-insensitive match
    "3": "intent: general_joke",
    "4": "intent: weather_query; place_name paris; date: in",  # one malformed part, one false positive
}


def test_hand_computed_scores():
    scores = score_predictions(GOLD, PREDICTIONS)
    # gold entities: time, date, artist_name, place_name; predicted: time (TP), artist_name (TP), date "in" (FP)
    precision, recall = 2 / 3, 2 / 4
    assert scores.slot_micro_f1 == pytest.approx(2 * precision * recall / (precision + recall))  # 4/7
    # slot sequences right: 2 and 3 (1 misses its date, 4 has an extra one); every intent is right
    assert (scores.exact_match, scores.exact_match_with_intent) == (2 / 4, 2 / 4)
    assert scores.intent_accuracy == 1.0 and scores.note is None
    assert (scores.malformed, scores.unlocated) == (1, 1)
    assert list(scores.as_json()) == [
        "slot_micro_f1",
        "exact_match",
        "exact_match_with_intent",
        "intent_accuracy",
        "note",
        "definitions",
        "malformed",
        "unlocated",
        "counts",
    ]
    assert set(scores.as_json()["definitions"]) == {
        "slot_micro_f1",
        "exact_match",
        "exact_match_with_intent",
        "intent_accuracy",
    }
    assert scores.as_json()["counts"] == {"total": 4, "scored": 4, "missing": 0, "skipped": 0, "skipped_by_reason": {}}


def test_wrong_intent_counts_against_the_intent_and_slots_exact_match_only():
    predictions = dict(PREDICTIONS, **{"2": "intent: play_radio; artist_name: queen"})
    scores = score_predictions(GOLD, predictions)
    assert scores.intent_accuracy == pytest.approx(3 / 4)
    assert (scores.exact_match, scores.exact_match_with_intent) == (2 / 4, 1 / 4)


# The case, by hand: three utterances of one gold slot each, predicted as mid-align's model does
# (slots only). 1: exact. 2: the date right and an extra time ("nine" is in the utterance): a false positive.
# 3: no slot predicted: a miss. Slots: TP 2, FP 1, FN 1, so precision = recall = F1 = 2/3; exact: 1 of 3.
MIDALIGN_GOLD = [
    record("1", "wake me up at [time : five am]", "alarm_set"),
    record("2", "wake me at nine on [date : monday]", "alarm_set"),
    record("3", "what is the weather in [place_name : paris]", "weather_query"),
]
MIDALIGN_SLOTS_ONLY = {"1": "time: five am", "2": "date: monday; time: nine", "3": "None"}


def test_slot_only_predictions_score_slot_sequences_and_no_intent():
    for gold in (MIDALIGN_GOLD, [dataclasses.replace(r, intent=None) for r in MIDALIGN_GOLD]):
        scores = score_predictions(gold, MIDALIGN_SLOTS_ONLY)
        assert scores.slot_micro_f1 == pytest.approx(2 / 3)
        assert scores.exact_match == pytest.approx(1 / 3)  # mid-align's ex_match_acc
        assert (scores.intent_accuracy, scores.exact_match_with_intent) == (None, None)
        saved = json.loads(json.dumps(scores.as_json()))
        assert saved["intent_accuracy"] is None and "not scored" in saved["note"]
        assert "ex_match_acc" in saved["definitions"]["exact_match"]
    assert "no prediction names an intent" in score_predictions(MIDALIGN_GOLD, MIDALIGN_SLOTS_ONLY).note


def test_predictions_with_intents_get_both_exact_matches_under_their_names():
    # The same slots with intents: 1's intent wrong, 2 and 3 right. Intent accuracy 2/3; slot sequences right:
    # 1 only (1/3); intent and slots right: none (0).
    with_intents = {
        "1": "intent: alarm_query; time: five am",
        "2": "intent: alarm_set; date: monday; time: nine",
        "3": "intent: weather_query",
    }
    scores = score_predictions(MIDALIGN_GOLD, with_intents)
    assert scores.slot_micro_f1 == pytest.approx(2 / 3) and scores.note is None
    assert (scores.exact_match, scores.exact_match_with_intent) == (pytest.approx(1 / 3), 0.0)
    assert scores.intent_accuracy == pytest.approx(2 / 3)
    # One prediction without an intent among predictions with intents: a wrong intent, not a slot-only run.
    scores = score_predictions(MIDALIGN_GOLD, dict(with_intents, **{"3": "None"}))
    assert scores.intent_accuracy == pytest.approx(1 / 3)


def test_malformed_answers_are_wrong_answers():
    garbage = score_predictions(GOLD, {key: "I do not know" for key in PREDICTIONS})
    assert (garbage.slot_micro_f1, garbage.malformed, garbage.counts.total) == (0.0, 4, 4)
    # Only 3 ("tell me a joke") has no gold slot, so an answer with no slot placed gets its sequence right.
    assert garbage.exact_match == pytest.approx(1 / 4) and garbage.intent_accuracy is None


def test_predictions_matched_by_id_not_line(tmp_path):
    rows = [{"id": key, "locale": "en-US", "prediction": value} for key, value in reversed(PREDICTIONS.items())]
    rows[0]["prediction"] = "intent: weather_query\nplace_name: paris"  # id 4, with a newline, now first
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    scores = score_predictions(GOLD, read_predictions(path, locale="en-US"))
    assert scores.exact_match == scores.exact_match_with_intent == pytest.approx(3 / 4)
    assert scores.slot_micro_f1 == pytest.approx(2 * (3 / 3) * (3 / 4) / (1 + 3 / 4))
    assert scores.malformed == 0


def test_missing_predictions_fail_unless_allowed_then_count_as_wrong():
    only_two = {"2": "intent: play_music; artist_name: queen"}
    with pytest.raises(
        MissingPredictionsError, match=r"^preds.jsonl: no prediction for 3 of 4 gold item\(s\) \(first: 1\)"
    ):
        score_predictions(GOLD, only_two, source="preds.jsonl")
    scores = score_predictions(GOLD, only_two, allow_missing=True)
    assert (scores.counts.scored, scores.counts.missing, scores.counts.total) == (1, 3, 4)
    # Over all 4 gold utterances: 1 exact (a missing one is wrong even without gold slots: 3), 1 intent;
    # slots: 1 of 4 gold entities found, no false positive.
    assert (scores.exact_match, scores.exact_match_with_intent, scores.intent_accuracy) == (1 / 4, 1 / 4, 1 / 4)
    assert scores.slot_micro_f1 == pytest.approx(2 * 1.0 * (1 / 4) / (1.0 + 1 / 4))
    with pytest.raises(ValueError, match="not in the gold data"):
        score_predictions(GOLD, {"99": "None"})


def test_max_examples_scores_the_first_gold_records_and_counts_the_rest_as_skipped():
    scores = score_predictions(GOLD, PREDICTIONS, max_examples=2)  # predictions for 3 and 4 are ignored
    assert scores.as_json()["counts"] == {
        "total": 2,
        "scored": 2,
        "missing": 0,
        "skipped": 2,
        "skipped_by_reason": {"beyond --max_examples": 2},
    }
    assert (scores.exact_match, scores.exact_match_with_intent, scores.intent_accuracy) == (1 / 2, 1 / 2, 1.0)


def test_parse_prediction():
    parsed = parse_prediction(" intent: alarm_set; time: 5:30 pm;; None; intent: other; what\n")
    assert parsed.intent == "alarm_set"
    assert parsed.slots == [("time", "5:30 pm")]
    assert parsed.malformed == ["intent: other", "what"]
    assert parse_prediction("None").slots == [] and parse_prediction("None").malformed == []


@pytest.mark.parametrize(
    "locale,text,tokens",
    [
        ("zh-CN", "播放bob marley的歌", ["播", "放", "bob", "marley", "的", "歌"]),
        ("ja-JP", "朝7時にiPhone12で", ["朝", "7", "時", "に", "iPhone12", "で"]),
        ("zh-TW", "播放 jazz", ["播", "放", "jazz"]),
        ("de-DE", "spiel  lieder von adele", ["spiel", "lieder", "von", "adele"]),
    ],
)
def test_segmentation(locale, text, tokens):
    assert segment(text, locale) == tokens


def test_character_locale_gold_tags_and_scoring():
    tokens, tags = gold_tags("[date : 明日] の [time : 朝7時] に起こして", "ja-JP")
    assert tokens == ["明", "日", "の", "朝", "7", "時", "に", "起", "こ", "し", "て"]
    assert tags == ["B-date", "I-date", "O", "B-time", "I-time", "I-time"] + ["O"] * 5
    gold = [
        MassiveRecord(
            "1", "ja-JP", "test", "明日の朝7時に起こして", "[date : 明日] の [time : 朝7時] に起こして", "alarm_set"
        ),
        MassiveRecord("2", "zh-CN", "test", "播放bob marley的歌", "播放 [artist_name : bob marley] 的歌", "play_music"),
    ]
    scores = score_predictions(
        gold, {"1": "intent: alarm_set; time: 朝7時; date: 明日", "2": "intent: play_music; artist_name: Bob Marley"}
    )
    assert (scores.slot_micro_f1, scores.exact_match, scores.intent_accuracy) == (1.0, 1.0, 1.0)


def test_targets_and_training_records():
    assert (
        format_target([("time", "five am"), ("date", "friday")], "alarm_set")
        == "intent: alarm_set; time: five am; date: friday"
    )
    assert format_target([], "general_joke") == "intent: general_joke"
    assert format_target([]) == "None"
    with pytest.raises(ValueError, match="reserved"):
        format_target([("intent", "x")])
    tokenizer = byte_level_tokenizer()
    rows = training_records(
        GOLD[:3],
        tokenizer,
        pairs=[
            {"text_parallel_0": "Hallo", "text_parallel_1": "Hello"},
            {"text_parallel_0": "你好", "text_parallel_1": "Hi"},
        ],
    )
    assert [row["text_parallel_1"] for row in rows] == ["Hello", "Hi", "Hello"]
    assert rows[0]["text"] == "intent: alarm_set; time: five am; date: this week<|eot_id|>"
    assert rows[0]["prefix"] == (
        f"<|start_header_id|>system<|end_header_id|>\n\n{SYSTEM_PROMPT_INTENT_AND_SLOTS}<|eot_id|>\n"
        "<|start_header_id|>user<|end_header_id|>\n\nwake me up at five am this week<|eot_id|>\n"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    more_pairs = training_records(
        GOLD[:2], tokenizer, pairs=[{"text_parallel_0": str(i), "text_parallel_1": str(i)} for i in range(5)]
    )
    assert [row["text_parallel_0"] for row in more_pairs] == ["0", "1"]  # task rows are never repeated
    slots_only = training_records(GOLD[2:3], tokenizer, with_intent=False)
    assert slots_only[0]["text"] == "None<|eot_id|>" and SYSTEM_PROMPT_SLOTS in slots_only[0]["prefix"]


def test_chat_prompt_strips_textual_bos_when_tokenizer_adds_one():
    tokenizer = byte_level_tokenizer()
    plain = chat_prompt(tokenizer, "sys", "hi")
    tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    assert chat_prompt(tokenizer, "sys", "hi") == plain
    assert tokenizer(plain)["input_ids"].count(tokenizer.bos_token_id) == 1


def test_shipped_sample_round_trip_and_generator():
    spec = importlib.util.spec_from_file_location("generate_sample", SAMPLE / "generate_sample.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for locale in generator.LOCALES:
        shipped = [json.loads(line) for line in (SAMPLE / f"{locale}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert shipped == generator.generate(locale), f"{locale}.jsonl is stale: rerun generate_sample.py"
        gold = load_massive(locale, "test", data_dir=SAMPLE)
        for item in gold:
            assert segment(item.utt, locale) == gold_tags(item.annot_utt, locale)[0]
        scores = score_predictions(gold, {item.id: format_target(item.slots, item.intent) for item in gold})
        assert (scores.slot_micro_f1, scores.exact_match, scores.intent_accuracy, scores.malformed) == (
            1.0,
            1.0,
            1.0,
            0,
        )


def test_shipped_training_files():
    for name, keys in [
        ("train_baseline.json", {"prefix", "text"}),
        ("train_baseline_with_alignment.json", {"prefix", "text", "text_parallel_0", "text_parallel_1"}),
    ]:
        rows = [json.loads(line) for line in (REPO / "data_example" / name).read_text(encoding="utf-8").splitlines()]
        assert 200 <= len(rows) <= 400
        assert all(set(row) == keys and row["text"].endswith("<|eot_id|>") for row in rows)
        assert all("<|begin_of_text|>" not in row["prefix"] for row in rows)


def test_locale_map_and_partitions():
    assert len(MASSIVE_LANG_MAP) == 39 and MASSIVE_LANG_MAP["id"] == "id-ID" and MASSIVE_LANG_MAP["zh"] == "zh-CN"
    assert resolve_locale("zh-TW") == "zh-TW"
    with pytest.raises(ValueError, match="unknown language"):
        resolve_locale("xx")
    assert len(load_massive("de", "validation", data_dir=SAMPLE)) == 20
    with pytest.raises(ValueError, match="no records for locale ko-KR"):
        load_massive("ko", "test", data_file=SAMPLE / "en-US.jsonl")


GOOD = {"id": "1", "locale": "en-US", "partition": "test", "utt": "hi", "annot_utt": "hi", "intent": "greet"}


@pytest.mark.parametrize(
    "lines,message",
    [
        ([GOOD, "{not json"], r"bad\.jsonl:2: malformed JSON"),
        ([GOOD, {k: v for k, v in GOOD.items() if k != "annot_utt"}], r"bad\.jsonl:2: missing field 'annot_utt'"),
        ([dict(GOOD, annot_utt="play [artist_name : queen")], r"bad\.jsonl:1: field 'annot_utt'"),
        ([dict(GOOD, utt=["x"])], r"bad\.jsonl:1: field 'utt' must be a string"),
        ([GOOD, GOOD], r"bad\.jsonl:2: duplicate id '1' \(first at .*bad\.jsonl:1\)"),
    ],
)
def test_data_errors_name_file_line_and_field(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    with pytest.raises(DataFormatError, match=message):
        load_massive("en", "test", data_file=path)


@pytest.mark.parametrize(
    "lines,message",
    [
        ([{"prediction": "None"}], r"p\.jsonl:1: missing field 'id'"),
        ([{"id": "1", "prediction": "a"}, {"id": "1", "prediction": "b"}], r"p\.jsonl:2: duplicate id '1'"),
        ([{"id": "1", "locale": "de-DE", "prediction": "a"}], r"p\.jsonl:1: field 'locale' is 'de-DE'"),
    ],
)
def test_prediction_file_errors(tmp_path, lines, message):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(DataFormatError, match=message):
        read_predictions(path, locale="en-US")


def test_optional_intent_and_numeric_id(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(dict(GOOD, id=7, intent=None)) + "\n")
    (item,) = read_massive_jsonl(path)
    assert (item.id, item.intent, item.source) == ("7", None, f"{path}:1")


def test_eval_massive_command_fails_in_one_line_when_predictions_are_missing(tmp_path):
    gold = load_massive("zh", "test", data_dir=SAMPLE)
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(
        "".join(json.dumps({"id": r.id, "locale": r.locale, "prediction": "None"}) + "\n" for r in gold[:2]),
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "scripts.eval_massive",
        "--pred_slots_file",
        str(predictions),
        "--lang",
        "zh",
        "--data_dir",
        str(SAMPLE),
    ]
    failed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src"))
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == (
        f"error: {predictions}: no prediction for {len(gold) - 2} of {len(gold)} gold item(s) (first: {gold[2].id}); "
        "pass --allow_missing to score them as wrong"
    )
    allowed = subprocess.run(
        command + ["--allow-missing"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
    )
    assert allowed.returncode == 0, allowed.stderr
    assert f"scored 2 of {len(gold)} gold utterance(s); {len(gold) - 2} missing" in allowed.stdout


def test_build_massive_training_data_script(tmp_path):
    from scripts import build_massive_training_data

    output = tmp_path / "train.jsonl"
    build_massive_training_data.main(
        ["--massive-files", str(SAMPLE / "de-DE.jsonl"), "--output", str(output), "--no-intent"]
    )
    expected = training_records(
        [r for r in read_massive_jsonl(SAMPLE / "de-DE.jsonl") if r.partition == "train"],
        byte_level_tokenizer(),
        with_intent=False,
    )
    assert [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()] == expected


def test_build_massive_training_data_refuses_a_partition_with_no_records_in_one_line(tmp_path):
    one_partition = tmp_path / "de-DE.jsonl"
    lines = (SAMPLE / "de-DE.jsonl").read_text(encoding="utf-8").splitlines()
    one_partition.write_text("\n".join(line for line in lines if json.loads(line)["partition"] == "train") + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "scripts.build_massive_training_data", "--massive_files", str(one_partition)]
        + ["--output", str(tmp_path / "out.jsonl"), "--partition", "validation"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: no dev records in {one_partition}"
    ]
    assert not (tmp_path / "out.jsonl").exists()


def test_eval_massive_writes_the_slot_only_scores_with_their_definitions(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in MIDALIGN_GOLD), encoding="utf-8")
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text(
        "".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in MIDALIGN_SLOTS_ONLY.items()), encoding="utf-8"
    )
    metrics = tmp_path / "metrics.json"
    command = [sys.executable, "-m", "scripts.eval_massive", "--pred_slots_file", str(predictions)]
    result = subprocess.run(
        [*command, "--data_file", str(gold), "--output_json", str(metrics)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])),
        capture_output=True,
        text=True,
        check=True,
    )
    saved = json.loads(metrics.read_text())
    assert saved["slot_micro_f1"] == pytest.approx(2 / 3) and saved["exact_match"] == pytest.approx(1 / 3)
    assert saved["intent_accuracy"] is None and saved["exact_match_with_intent"] is None
    assert set(saved["definitions"]) == {"slot_micro_f1", "exact_match", "exact_match_with_intent", "intent_accuracy"}
    assert "intent_accuracy: n/a" in result.stdout and f"note: {saved['note']}" in result.stdout
