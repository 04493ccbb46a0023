"""The one TSV reader (pairs, ICL sets, MGSM). Bad training input at the command line (one line naming file,
line and field, exit code 2, no model loaded) is in the fault battery, tests/faults/cases_training.py."""

import pytest


def test_tsv_rows_name_file_line_and_columns(tmp_path):
    """Header and blank lines pass, a bad line names file, line and columns."""
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
