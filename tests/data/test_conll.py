"""Reading and validating WNUT-style CoNLL: each bad-input path names file, line and problem."""

import pytest

from spacy_wnut.data.conll import ReadReport, read_conll, split_tag
from spacy_wnut.errors import InputError


def test_reads_sentences_split_by_empty_and_tab_lines(write_conll):
    path = write_conll("Empire\tB-location\nState\tI-location\n\t\nhi\tO\n\nyo\tO\n")
    report = ReadReport()
    sentences = list(read_conll(path, report=report))
    assert [s.words for s in sentences] == [["Empire", "State"], ["hi"], ["yo"]]
    assert sentences[0].tags == ["B-location", "I-location"]
    assert (report.sentences, report.tokens, report.tab_separators) == (3, 4, 1)


def test_last_sentence_without_trailing_newline_is_kept(write_conll):
    sentences = list(read_conll(write_conll("a\tO\n\nb\tB-person")))
    assert [s.words for s in sentences] == [["a"], ["b"]]


def test_split_tag_uses_first_hyphen_only():
    assert split_tag("B-creative-work") == ("B", "creative-work")
    assert split_tag("O") == ("O", None)


@pytest.mark.parametrize(
    "content,line,problem",
    [
        ("a\tO\nb\n", 2, "expected 2 tab-separated fields"),
        ("a\tO\tX\n", 1, "expected 2 tab-separated fields"),
        ("a\tO\n\tO\n", 2, "empty token"),
        ("a\tB-persn\n", 1, "unknown entity type 'persn'"),
        ("a\tE-person\n", 1, "is not IOB2"),
        ("a\tB-\n", 1, "is not IOB2"),
        ("a\tO\r\n", 1, "CRLF line ending"),
        ("a b\tO\n", 1, "contains whitespace"),
    ],
)
def test_bad_line_is_an_error_naming_file_and_line(write_conll, content, line, problem):
    path = write_conll(content)
    with pytest.raises(InputError) as err:
        list(read_conll(path))
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert problem in str(err.value)


def test_non_utf8_bytes_are_an_error_naming_the_line(write_conll):
    path = write_conll(b"a\tO\n\ncaf\xe9\tO\n")
    with pytest.raises(InputError, match=rf"{path}:3: not valid UTF-8: byte 0xe9 at column 4"):
        list(read_conll(path))


@pytest.mark.parametrize("content", ["", "\n\n\t\n"])
def test_empty_file_is_an_error(write_conll, content):
    path = write_conll(content)
    with pytest.raises(InputError, match="holds no sentences"):
        list(read_conll(path))


def test_i_tag_without_entity_is_repaired_and_reported(write_conll):
    path = write_conll("a\tO\nb\tI-person\nc\tB-group\nd\tI-person\n")
    report = ReadReport()
    (sentence,) = read_conll(path, report=report)
    assert sentence.tags == ["O", "B-person", "B-group", "B-person"]
    assert [r.where for r in report.repairs] == [f"{path}:2", f"{path}:4"]
    assert "continues 'group' entity" in report.repairs[1].problem


def test_strict_makes_i_repair_an_error(write_conll):
    path = write_conll("a\tO\nb\tI-person\n")
    with pytest.raises(InputError, match=rf"{path}:2: tag 'I-person' continues no entity"):
        list(read_conll(path, strict=True))


def test_any_label_accepted_when_labels_is_none(write_conll):
    (sentence,) = read_conll(write_conll("a\tB-PER\nb\tI-PER\n"), labels=None)
    assert sentence.tags == ["B-PER", "I-PER"]
