"""CoNLL and HF datasets -> DocBin: exact entities, grouping, summaries, real-file counts."""

import subprocess

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_wnut.data.conll import read_conll
from spacy_wnut.data.convert import convert_conll, convert_hf_dataset, doc_to_iob
from spacy_wnut.errors import InputError

from util import wnut_command

SPLITS = {
    "wnut17train.conll": (3394, 62730),
    "emerging.dev.conll": (1009, 15733),
    "emerging.test.annotated": (1287, 23394),
}


def load_docs(path):
    nlp = spacy.blank("en")
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def test_docs_carry_entities_and_sentence_starts(write_conll, tmp_path):
    path = write_conll("Empire\tB-location\nState\tI-location\nrocks\tO\n\nby\tO\nMSFT\tB-corporation\n")
    summary = convert_conll(path, tmp_path / "out.spacy", n_sents=2)
    (doc,) = load_docs(tmp_path / "out.spacy")
    assert [(e.text, e.label_) for e in doc.ents] == [("Empire State", "location"), ("MSFT", "corporation")]
    assert [s.text for s in doc.sents] == ["Empire State rocks", "by MSFT"]
    assert (summary.docs, summary.sentences, summary.tokens) == (1, 2, 5)
    assert summary.entities == {"location": 1, "corporation": 1}


def test_one_sentence_per_doc_by_default(write_conll, tmp_path):
    summary = convert_conll(write_conll("a\tO\n\nb\tO\n\nc\tO\n"), tmp_path / "o.spacy")
    assert summary.docs == 3 and len(load_docs(tmp_path / "o.spacy")) == 3


def test_repairs_are_counted_in_summary(write_conll, tmp_path):
    summary = convert_conll(write_conll("a\tI-group\n"), tmp_path / "o.spacy")
    (doc,) = load_docs(tmp_path / "o.spacy")
    assert len(summary.repairs) == 1 and [e.label_ for e in doc.ents] == ["group"]


def test_cli_exits_nonzero_with_location_on_bad_input(write_conll, tmp_path):
    path = write_conll("a\tO\nb\tB-nope\n")
    result = subprocess.run(
        wnut_command("convert", str(path), str(tmp_path / "o.spacy")),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"{path}:2: unknown entity type 'nope'" in result.stderr
    assert not (tmp_path / "o.spacy").exists()


def test_cli_prints_summary_with_entities_per_type(write_conll, tmp_path):
    path = write_conll("a\tB-person\nb\tI-location\n")
    result = subprocess.run(
        wnut_command("convert", str(path), str(tmp_path / "o.spacy")),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "1 docs, 1 sentences, 2 tokens, 2 entities" in result.stdout
    assert "1 repairs" in result.stdout and f"{path}:2" in result.stdout


@pytest.fixture
def hf_dataset():
    datasets = pytest.importorskip("datasets")
    names = ["O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-person"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    data = {
        "tokens": [["Watching", "Game", "of", "Thrones"], ["Apple", "Inc", "!"], ["Tom"]],
        "ner_tags": [[0, 3, 4, 4], [1, 2, 0], [5]],
    }
    return datasets, datasets.Dataset.from_dict(data, features=features)


def test_hf_dataset_converts_to_same_entities(hf_dataset, tmp_path):
    _, dataset = hf_dataset
    (summary,) = convert_hf_dataset(dataset, tmp_path / "hf.spacy").values()
    docs = load_docs(tmp_path / "hf.spacy")
    assert [doc_to_iob(d) for d in docs] == [
        ["O", "B-creative-work", "I-creative-work", "I-creative-work"],
        ["B-corporation", "I-corporation", "O"],
        ["B-person"],
    ]
    assert summary.entities == {"creative-work": 1, "corporation": 1, "person": 1}


def test_hf_dataset_dict_writes_one_file_per_split(hf_dataset, tmp_path):
    datasets, dataset = hf_dataset
    summaries = convert_hf_dataset(datasets.DatasetDict(train=dataset, validation=dataset.select([0])), tmp_path)
    assert sorted(summaries) == ["train", "validation"]
    assert len(load_docs(tmp_path / "validation.spacy")) == 1


def test_hf_dataset_bad_row_is_named(hf_dataset, tmp_path):
    datasets, dataset = hf_dataset
    bad = datasets.Dataset.from_dict(
        {"tokens": [["a"], ["b", ""]], "ner_tags": [[0], [0, 0]]}, features=dataset.features
    )
    with pytest.raises(InputError, match="data row 1 token 1: empty token"):
        convert_hf_dataset(bad, tmp_path / "x.spacy")


def test_hf_dataset_empty_row_is_counted_not_silently_dropped(hf_dataset, tmp_path):
    datasets, dataset = hf_dataset
    data = datasets.Dataset.from_dict({"tokens": [[], ["a"]], "ner_tags": [[], [0]]}, features=dataset.features)
    (summary,) = convert_hf_dataset(data, tmp_path / "x.spacy").values()
    assert summary.docs == 1 and [r.where for r in summary.repairs] == ["data row 0"]
    with pytest.raises(InputError, match="data row 0: empty sentence"):
        convert_hf_dataset(data, tmp_path / "y.spacy", strict=True)


@pytest.mark.parametrize("filename", sorted(SPLITS))
def test_real_file_round_trips_exactly(wnut_mirror, tmp_path, filename):
    path = wnut_mirror / filename
    summary = convert_conll(path, tmp_path / "out.spacy")
    sentences, tokens = SPLITS[filename]
    assert (summary.sentences, summary.tokens, summary.docs) == (sentences, tokens, sentences)
    assert summary.repairs == []
    docs = load_docs(tmp_path / "out.spacy")
    source = list(read_conll(path, strict=True))
    assert [[t.text for t in d] for d in docs] == [s.words for s in source]
    assert [doc_to_iob(d) for d in docs] == [s.tags for s in source]


def test_official_train_file_separator_lines_are_all_seen(wnut_mirror, tmp_path):
    """`spacy convert -c ner` yields 1,000 docs from this file; we must see all 3,394 sentences."""
    summary = convert_conll(wnut_mirror / "wnut17train.conll", tmp_path / "t.spacy")
    assert summary.tab_separators == 2394 and summary.docs == 3394


def test_hard_characters_survive_conversion(wnut_mirror, tmp_path):
    convert_conll(wnut_mirror / "emerging.dev.conll", tmp_path / "dev.spacy")
    words = [t.text for doc in load_docs(tmp_path / "dev.spacy") for t in doc]
    assert "\ufe0f" in words
    assert any("\u200b" in w and len(w) > 1 for w in words)
    ent_words = [t.text for doc in load_docs(tmp_path / "dev.spacy") for e in doc.ents for t in e]
    assert any(w.endswith("\ufeff") for w in ent_words)


def test_convert_refuses_to_write_over_its_input(write_conll):
    path = write_conll("a\tO\n")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="the output is the input"):
        convert_conll(path, path)
    assert path.read_bytes() == before


def test_a_failed_conversion_keeps_the_earlier_output(write_conll, tmp_path):
    convert_conll(write_conll("a\tO\n", "good.conll"), tmp_path / "out.spacy")
    before = (tmp_path / "out.spacy").read_bytes()
    with pytest.raises(InputError, match="bad.conll:2"):
        convert_conll(write_conll("a\tO\nb\tB-nope\n", "bad.conll"), tmp_path / "out.spacy")
    assert (tmp_path / "out.spacy").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conll", "good.conll", "out.spacy"]


def test_a_byte_order_mark_is_removed_and_reported(write_conll, tmp_path, capsys):
    from spacy_wnut.data.convert import print_summary

    summary = convert_conll(write_conll(b"\xef\xbb\xbfApple\tB-corporation\nrocks\tO\n"), tmp_path / "o.spacy")
    (doc,) = load_docs(tmp_path / "o.spacy")
    assert doc[0].text == "Apple" and [e.text for e in doc.ents] == ["Apple"]
    print_summary(summary)
    assert "byte-order mark" in capsys.readouterr().out


def test_cr_only_line_endings_are_named(write_conll):
    path = write_conll(b"a\tO\rb\tO\r")
    with pytest.raises(InputError, match=r"data.conll:1: carriage return \(CR\) at column 4.*CR-only"):
        list(read_conll(path))


def test_a_file_of_only_separators_is_not_called_empty(write_conll):
    with pytest.raises(InputError, match=r"holds no sentences \(only 3 separator line\(s\)\)"):
        list(read_conll(write_conll("\n\t\n\n")))
    with pytest.raises(InputError, match=r"holds no sentences \(it is empty\)"):
        list(read_conll(write_conll("")))
