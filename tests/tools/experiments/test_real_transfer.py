"""Real-model transfer experiment: the CLDR task against known facts, and the quick run end to end on SmolLM2."""

import json
import struct

import pytest
import torch

from scripts import run_real_transfer_experiment
from tools.experiments import cldr_task
from tools.experiments.real_transfer import RealTransferConfig
from transformers_align.errors import UserError
from transformers_align.evaluation.loglikelihood import continuation_logprobs

pytestmark = [
    pytest.mark.slow,  # end to end: a script, torchrun or a real model
    pytest.mark.usefixtures("one_torch_thread"),
]

LANGUAGES = ("fr", "de", "es")


@pytest.fixture(scope="module")
def entities():
    return {(e.kind, e.code): e for e in cldr_task.build_entities(LANGUAGES)}


def test_continents_and_names_match_known_facts(entities):
    assert cldr_task.continent_labels() == ["Africa", "Americas", "Asia", "Europe", "Oceania"]
    facts = {
        ("territory", "DE"): "Europe",
        ("territory", "KE"): "Africa",
        ("territory", "BR"): "Americas",
        ("territory", "JP"): "Asia",
        ("territory", "FJ"): "Oceania",
        ("currency", "JPY"): "Asia",
        ("currency", "KES"): "Africa",
        ("language", "sw"): "Africa",
        ("language", "qu"): "Americas",
    }
    for key, continent in facts.items():
        assert entities[key].continent == continent, key
    for ambiguous in [
        ("territory", "RU"),
        ("territory", "US"),
        ("currency", "EUR"),
        ("currency", "USD"),
        ("language", "en"),
    ]:
        assert ambiguous not in entities  # on two continents: no single answer
    germany = entities["territory", "DE"]
    assert [germany.name(x) for x in ("en", "fr", "de", "es")] == ["Germany", "Allemagne", "Deutschland", "Alemania"]
    assert cldr_task.prompt(germany, "fr") == "Pays : Allemagne\nContinent :"
    assert cldr_task.prompt(germany, "de") == "Land: Deutschland\nKontinent:"
    assert cldr_task.answer(germany) == " Europe"


def test_full_split_tests_over_200_unseen_entities_per_language(entities):
    train, test = cldr_task.split_entities(list(entities.values()), RealTransferConfig().test_fraction, seed=0)
    assert len(test) >= 200 and not {(e.kind, e.code) for e in train} & {(e.kind, e.code) for e in test}
    assert {e.kind for e in test} == set(cldr_task.KINDS) and {e.continent for e in test} == set(
        cldr_task.continent_labels()
    )
    for language in ("en",) + LANGUAGES:  # one distinct prompt per test entity in every language
        assert len({cldr_task.prompt(e, language) for e in test}) == len(test)


def test_pairs_naming_an_entity_are_dropped(entities):
    germany, kenya = entities["territory", "DE"], entities["territory", "KE"]
    pairs = [
        ("Visit Germany today.", "Visitez l'Allemagne."),
        ("Save the file.", "Enregistrez le fichier."),
        ("Germanys are plural.", "Rien."),
        ("A trip.", "Un voyage au KENYA."),
    ]
    kept, dropped = cldr_task.drop_pairs_mentioning(pairs, [germany, kenya])
    assert kept == [pairs[1], pairs[2]] and dropped == 2


@pytest.fixture(scope="module")
def quick_run(smollm2_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("real_transfer")
    result = run_real_transfer_experiment.main(
        ["--quick", "--no-progress", "--model-path", str(smollm2_dir), "--output-dir", str(output_dir)]
    )
    return result, output_dir


def test_quick_run_reports_what_its_scores_say(quick_run):
    result, output_dir = quick_run
    saved = json.loads((output_dir / "results.json").read_text())
    labels = saved["labels"]
    gold = [labels.index(entity["continent"]) for entity in saved["test_entities"]]
    for variant in ("baseline", "alternate", "joint"):
        scores = saved["runs"][f"{variant}/seed0"]["scores"]
        for language in ("en", "fr", "de"):
            recomputed = sum(
                int(torch.tensor(row).argmax()) == answer for row, answer in zip(scores[language], gold)
            ) / len(gold)
            assert saved["summary"][variant]["accuracy"][language]["mean"] == pytest.approx(recomputed)
            assert f"{100 * recomputed:.1f}" in (output_dir / "results.md").read_text()
    png = (output_dir / "transfer.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1200, 450)


def test_quick_run_pretrained_scores_equal_the_stock_model(quick_run, smollm2):
    result, _ = quick_run
    model, tokenizer = smollm2
    candidates = [tokenizer(f" {label}", add_special_tokens=False).input_ids for label in result["labels"]]
    for entity in result["test_entities"][:3]:
        for language in ("en", "fr"):
            stored = result["runs"]["pretrained"]["scores"][language][result["test_entities"].index(entity)]
            text = cldr_task.prompt(
                cldr_task.Entity(entity["kind"], entity["code"], entity["continent"], tuple(entity["names"].items())),
                language,
            )
            requests = [(tokenizer(text).input_ids, candidate) for candidate in candidates]
            assert stored == pytest.approx(continuation_logprobs(model, requests, progress=False), abs=1e-3)


def test_quick_run_trains_every_variant_from_the_same_start(quick_run):
    result, _ = quick_run
    losses = {variant: result["runs"][f"{variant}/seed0"]["losses"] for variant in ("baseline", "alternate", "joint")}
    # Same weights, seed and first batch: the first task loss is the same for all three (LoRA starts as the identity).
    assert losses["baseline"]["task_loss"]["first"] == pytest.approx(
        losses["alternate"]["task_loss"]["first"], rel=1e-5
    )
    assert losses["baseline"]["task_loss"]["first"] == pytest.approx(losses["joint"]["task_loss"]["first"], rel=1e-5)
    assert (
        "alignment_loss" not in losses["baseline"]
        and "alignment_loss" in losses["alternate"]
        and "alignment_loss" in losses["joint"]
    )
    for variant in ("consistency", "alternate+consistency"):  # translated prompts of the same entities
        losses = result["runs"][f"{variant}/seed0"]["losses"]
        assert "consistency_loss" in losses and losses["task_loss"]["first"] == pytest.approx(
            result["runs"]["baseline/seed0"]["losses"]["task_loss"]["first"], rel=1e-5
        )
    assert "alignment_loss" in losses and "consistency_loss" not in result["runs"]["joint/seed0"]["losses"]


def test_runs_of_other_seeds_combine_and_mismatches_are_refused(quick_run, tmp_path):
    result, output_dir = quick_run
    other = json.loads(json.dumps(result))
    other["config"]["seeds"] = [7]
    other["runs"] = {name.replace("/seed0", "/seed7"): run for name, run in other["runs"].items()}
    other["timings"] = {name.replace("/seed0", "/seed7"): value for name, value in other["timings"].items()}
    (tmp_path / "seed7").mkdir()
    (tmp_path / "seed7" / "results.json").write_text(json.dumps(other))
    combined = run_real_transfer_experiment.main(
        ["--combine", str(output_dir), str(tmp_path / "seed7"), "--output-dir", str(tmp_path / "all")]
    )
    summary = json.loads((tmp_path / "all" / "results.json").read_text())["summary"]
    assert combined["config"]["seeds"] == [0, 7]
    single = json.loads((output_dir / "results.json").read_text())["summary"]
    for variant in ("baseline", "alternate", "joint"):
        assert summary[variant]["accuracy"]["fr"]["values"] == 2 * single[variant]["accuracy"]["fr"]["values"]
        assert summary[variant]["accuracy"]["fr"]["sd"] == 0.0
    other["config"]["temperature"] = 0.5
    (tmp_path / "seed7" / "results.json").write_text(json.dumps(other))
    with pytest.raises(UserError, match="differ in temperature"):
        run_real_transfer_experiment.main(
            ["--combine", str(output_dir), str(tmp_path / "seed7"), "--output-dir", str(tmp_path / "x")]
        )


def test_pair_languages_train_on_a_subset_in_the_full_runs_order(smollm2):
    from dataclasses import replace

    from tools.experiments.real_transfer import build_data
    from transformers_align.data.gettext_pairs import gettext_pairs

    _, tokenizer = smollm2
    config = RealTransferConfig.quick()  # test languages fr, de
    full = build_data(config, tokenizer)
    german = build_data(replace(config, pair_languages=("de",)), tokenizer)
    german_train = set(gettext_pairs(("de",), config.retrieval_pairs, config.split_seed)["de"][0])
    assert len(german.pairs) == full.notes["pairs_de"] > 0 and set(german.pairs) <= german_train
    assert german.pairs == [pair for pair in full.pairs if pair in set(german.pairs)]  # the full run's order
    assert german.retrieval == full.retrieval and german.test == full.test  # evaluation is unchanged
    with pytest.raises(ValueError, match="pair languages es must be among the test languages fr,de"):
        replace(config, pair_languages=("es",))  # refused with the configuration, before any model loads
