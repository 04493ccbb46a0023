"""EN↔X pairs from gettext catalogs: the .po reader and filter on hand-made catalogs, and the real
django/sphinx ones."""

import pytest

from scripts import build_parallel_pairs
from transformers_align.data.gettext_pairs import catalog_files, gettext_pairs, parse_po, sentence_pairs, split_pairs
from transformers_align.data.jsonl import DataFormatError
from transformers_align.data.records import SkipCounter, load_pairs
from transformers_align.errors import UserError

CATALOG = r'''# A hand-made catalog.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: views.py:1
msgid "Your password was changed successfully."
msgstr "Votre mot de passe a été modifié avec succès."

#, fuzzy
msgid "This translation is only a guess."
msgstr "Cette traduction est une supposition."

#, python-format
msgid "Delete %(name)s and all of its items?"
msgstr "Supprimer %(name)s et tous ses éléments ?"

msgid "One item was deleted from the list."
msgid_plural "Several items were deleted from the list."
msgstr[0] "Un élément a été supprimé de la liste."
msgstr[1] "Plusieurs éléments ont été supprimés de la liste."

msgid "Too short here"
msgstr "Trop court"

msgid "Click <b>here</b> to continue reading."
msgstr "Cliquez <b>ici</b> pour continuer la lecture."

msgid "This string has no translation yet."
msgstr ""

msgctxt "button"
msgid "The long message is "
"split over two lines."
msgstr "Le long message est "
"réparti sur deux lignes."
msgid "An entry follows without a blank line."
msgstr "Une entrée suit sans ligne vide."

msgid "A \"quoted\" word stays in the sentence."
msgstr "Un mot « cité » reste dans la phrase."

msgid "your password was changed successfully."
msgstr "Une autre traduction de la même phrase."

#~ msgid "An obsolete entry is not used anymore."
#~ msgstr "Une entrée obsolète n'est plus utilisée."
'''


def test_parse_po_reads_flags_plurals_context_and_continuations():
    entries = {e.msgid: e for e in parse_po(CATALOG, "hand.po")}
    assert entries["This translation is only a guess."].fuzzy
    assert entries["One item was deleted from the list."].plural
    assert entries["The long message is split over two lines."].msgstr == "Le long message est réparti sur deux lignes."
    assert entries["An entry follows without a blank line."].msgstr == "Une entrée suit sans ligne vide."
    assert 'A "quoted" word stays in the sentence.' in entries
    assert not any("obsolete" in msgid for msgid in entries)
    assert entries[""].msgstr.startswith("Content-Type")


def test_sentence_pairs_keep_only_clean_singular_translated_sentences(tmp_path):
    path = tmp_path / "fr" / "LC_MESSAGES" / "django.po"
    path.parent.mkdir(parents=True)
    path.write_text(CATALOG, encoding="utf-8")
    assert sentence_pairs([path]) == [
        ("Your password was changed successfully.", "Votre mot de passe a été modifié avec succès."),
        ("The long message is split over two lines.", "Le long message est réparti sur deux lignes."),
        ("An entry follows without a blank line.", "Une entrée suit sans ligne vide."),
        ('A "quoted" word stays in the sentence.', "Un mot « cité » reste dans la phrase."),
    ]  # the case-insensitive repeat of the first English sentence is dropped too


@pytest.mark.parametrize(
    "text, message",
    [
        ('msgid "Unterminated\n', "hand.po:1: expected a double-quoted string"),
        ('msgid "a"\nmsgstr "b"\n"orphan"\n\n"again"\n', "hand.po:5: a continuation string outside"),
        ('msgid "a"\nmsgtranslation "b"\n', "hand.po:2: unknown keyword 'msgtranslation'"),
    ],
)
def test_malformed_po_names_file_and_line(text, message):
    with pytest.raises(DataFormatError, match=message):
        parse_po(text, "hand.po")


def test_split_is_seeded_disjoint_and_independent_of_input_order():
    pairs = [(f"English sentence number {i}.", f"Phrase numéro {i}.") for i in range(30)]
    train, test = split_pairs(pairs, 10, seed=3)
    assert len(test) == 10 and len(train) == 20 and set(train) | set(test) == set(pairs)
    assert split_pairs(list(reversed(pairs)), 10, seed=3) == (train, test)
    assert split_pairs(pairs, 10, seed=4)[1] != test
    with pytest.raises(ValueError, match="between 1 and 29"):
        split_pairs(pairs, 30, seed=0)


def test_real_catalogs_give_disjoint_pairs_in_several_languages():
    splits = gettext_pairs(["fr", "de", "es"], test_size=40, seed=0)
    for language, (train, test) in splits.items():
        assert len(train) > 0 and len(test) == 40, language
        assert not {english for english, _ in test} & {english for english, _ in train}, language
        assert not {translation for _, translation in test} & {translation for _, translation in train}, language
    # Side 0 is the English msgid of a real French catalog entry, side 1 its msgstr.
    entries = {
        (e.msgid.strip(), e.msgstr.strip())
        for path in catalog_files("fr")
        for e in parse_po(path.read_text(encoding="utf-8"))
    }
    assert set(splits["fr"][1]) <= entries


def test_cli_writes_tsv_pairs_that_the_trainer_reads(tmp_path, capsys):
    build_parallel_pairs.main(
        ["--languages", "fr,de", "--output-dir", str(tmp_path), "--seed", "0", "--test-size", "30"]
    )
    out = capsys.readouterr().out
    assert "en-fr:" in out and "30 test" in out
    pairs = load_pairs([tmp_path / "en-fr.test.tsv"], SkipCounter())
    assert len(pairs) == 30 and sorted(p.name for p in tmp_path.iterdir()) == [
        "en-de.test.tsv",
        "en-de.train.tsv",
        "en-fr.test.tsv",
        "en-fr.train.tsv",
    ]
    # Running again with the same arguments is harmless; other pairs are not written over a user's files.
    build_parallel_pairs.main(["--languages", "fr", "--output-dir", str(tmp_path), "--test-size", "30"])
    with pytest.raises(UserError, match="exists with other pairs; pass --overwrite"):
        build_parallel_pairs.main(["--languages", "fr", "--output-dir", str(tmp_path), "--test-size", "31"])
    assert len(load_pairs([tmp_path / "en-fr.test.tsv"], SkipCounter())) == 30


def test_unknown_language_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no gettext catalog for language 'xx'"):
        build_parallel_pairs.main(["--languages", "xx", "--output-dir", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []
