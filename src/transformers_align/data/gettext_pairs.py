"""Real EN↔X sentence pairs from the gettext catalogs that the django and sphinx wheels ship.

Each ``<package>/**/<locale>/LC_MESSAGES/*.po`` holds English ``msgid``s and their human translations
(``msgstr``). Kept: singular, non-fuzzy entries with a non-empty translation that differs from the
English, that read like a sentence (at least ``MIN_WORDS`` English words) and carry no placeholder,
markup, format string, path or URL on either side. Pairs are deduplicated on each side (case-insensitive,
first catalog in path order wins), so that retrieval over them has one right answer, then split into a
seeded train/test partition.
"""

import ast
import importlib.util
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

from transformers_align.data.jsonl import DataFormatError, write_atomic
from transformers_align.errors import UserError

CATALOG_PACKAGES = ("django", "sphinx")
MIN_WORDS = 4
# Placeholders (%s, %(name)s, {0}), markup (<b>, `code`, *emphasis*, |subst|, &amp;), escapes, identifiers,
# file names and abbreviations (conf.py, e.g.), URLs, ellipses.
NOT_A_SENTENCE = re.compile(r"[%{}<>`*|\\_=\t\n\[\]]|&\w+;|https?:|\.\.\.|\w\.\w")

Pair = Tuple[str, str]


@dataclass
class PoEntry:
    msgid: str
    msgstr: str
    fuzzy: bool
    plural: bool
    line: int


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        raise DataFormatError(f"{where}: expected a double-quoted string, found {text[:40]!r}")
    try:
        return ast.literal_eval(text)  # C-style escapes (\" \\ \n \t), as gettext writes them
    except (SyntaxError, ValueError):
        raise DataFormatError(f"{where}: malformed string {text[:40]!r}") from None


def parse_po(text: str, source: str = "<po>") -> List[PoEntry]:
    """The entries of a ``.po`` file; obsolete (``#~``) entries are left out. Errors name ``source`` and line."""
    entries, fields, flags, current, start = [], {}, set(), None, 0
    for number, line in enumerate(text.splitlines() + [""], start=1):
        where, stripped = f"{source}:{number}", line.strip()
        # An entry ends at the first blank line, comment or new msgctxt/msgid after its msgstr.
        if any(key.startswith("msgstr") for key in fields) and (
            not stripped or stripped.startswith(("#", "msgctxt", "msgid"))
        ):
            plural = "msgid_plural" in fields
            msgstr = fields.get("msgstr[0]" if plural else "msgstr", "")
            entries.append(PoEntry(fields.get("msgid", ""), msgstr, "fuzzy" in flags, plural, start))
            fields, flags, current = {}, set(), None
        if not stripped:
            continue
        if stripped.startswith("#"):
            if stripped.startswith("#,"):
                flags |= {flag.strip() for flag in stripped[2:].split(",")}
            continue
        if stripped.startswith('"'):
            if current is None:
                raise DataFormatError(f"{where}: a continuation string outside any msgid/msgstr")
            fields[current] += _unquote(stripped, where)
            continue
        keyword, _, rest = stripped.partition(" ")
        if keyword not in ("msgctxt", "msgid", "msgid_plural", "msgstr") and not re.fullmatch(
            r"msgstr\[\d+\]", keyword
        ):
            raise DataFormatError(f"{where}: unknown keyword {keyword!r}")
        start = start if fields else number
        current = keyword
        fields[current] = _unquote(rest, where)
    return entries


def is_sentence_like(english: str, translation: str) -> bool:
    return len(english.split()) >= MIN_WORDS and not any(NOT_A_SENTENCE.search(side) for side in (english, translation))


def catalog_files(language: str, packages: Sequence[str] = CATALOG_PACKAGES) -> List[Path]:
    """The ``.po`` files of ``language`` (a locale folder name: fr, de, pt_BR) in the installed ``packages``."""
    files = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(
                f"the {package} package (its gettext catalogs are the parallel text) is not "
                f"installed: pip install {package}"
            )
        root = Path(list(spec.submodule_search_locations)[0])
        files.extend(sorted(root.rglob(f"locale/{language}/LC_MESSAGES/*.po")))
    return files


def sentence_pairs(files: Sequence[Path]) -> List[Pair]:
    """Sentence-like ``(english, translation)`` pairs of ``files``, each side unique (case-insensitive)."""
    pairs, seen_english, seen_translation = [], set(), set()
    for path in files:
        for entry in parse_po(Path(path).read_text(encoding="utf-8"), str(path)):
            english, translation = entry.msgid.strip(), entry.msgstr.strip()
            if entry.plural or entry.fuzzy or not english or not translation or english == translation:
                continue
            if not is_sentence_like(english, translation):
                continue
            if english.casefold() in seen_english or translation.casefold() in seen_translation:
                continue
            seen_english.add(english.casefold())
            seen_translation.add(translation.casefold())
            pairs.append((english, translation))
    return pairs


def split_pairs(pairs: Sequence[Pair], test_size: int, seed: int) -> Tuple[List[Pair], List[Pair]]:
    """``(train, test)``: a seeded shuffle of ``pairs`` (in sorted order first, so file order does not matter)."""
    if not 0 < test_size < len(pairs):
        raise UserError(f"test size {test_size} must be between 1 and {len(pairs) - 1} (there are {len(pairs)} pairs)")
    shuffled = sorted(pairs)
    random.Random(seed).shuffle(shuffled)
    return shuffled[test_size:], shuffled[:test_size]


def gettext_pairs(languages: Sequence[str], test_size: int, seed: int = 0) -> Dict[str, Tuple[List[Pair], List[Pair]]]:
    """``{language: (train, test)}`` EN↔language pairs from the installed django and sphinx catalogs."""
    splits = {}
    for language in languages:
        files = catalog_files(language)
        if not files:
            raise UserError(
                f"no gettext catalog for language {language!r} in {', '.join(CATALOG_PACKAGES)} "
                "(use a locale folder name such as fr, de, es, pt_BR)"
            )
        splits[language] = split_pairs(sentence_pairs(files), test_size, seed)
    return splits


def tsv_lines(pairs: Sequence[Pair]) -> Iterator[str]:
    for english, translation in pairs:  # tabs and newlines were filtered out, so the columns are safe
        yield f"{english}\t{translation}\n"


def write_pair_files(
    splits: Dict[str, Tuple[List[Pair], List[Pair]]], output_dir, overwrite: bool = False
) -> List[Path]:
    """``en-<language>.train.tsv`` and ``.test.tsv`` per language (English first), written atomically.

    A different file already there is an error unless ``overwrite``; the same content is left as it is.
    """
    output_dir = Path(output_dir)
    contents = {
        output_dir / f"en-{language}.{part}.tsv": "".join(tsv_lines(pairs))
        for language, (train, test) in splits.items()
        for part, pairs in (("train", train), ("test", test))
    }
    clashes = [
        path
        for path, text in contents.items()
        if path.exists() and not overwrite and path.read_text(encoding="utf-8") != text
    ]
    if clashes:
        raise UserError(f"{clashes[0]} exists with other pairs; pass --overwrite or choose another --output_dir")
    return [write_atomic(path, text) for path, text in contents.items()]
