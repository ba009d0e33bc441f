"""CoNLL and HF datasets -> DocBin: exact entities, grouping, summaries, real-file counts."""

import subprocess
import sys

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_wnut.data.conll import read_conll
from spacy_wnut.data.convert import convert_conll, convert_hf_dataset, doc_to_iob
from spacy_wnut.errors import InputError, OutputError

from ..util import ROOT, wnut_command

ASSETS = ROOT / "assets"

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
        convert_conll(write_conll("a\tO\nb\tB-nope\n", "bad.conll"), tmp_path / "out.spacy", overwrite=True)
    assert (tmp_path / "out.spacy").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conll", "good.conll", "out.spacy"]


def test_a_byte_order_mark_is_removed_and_reported(write_conll, tmp_path, capsys):
    from spacy_wnut.cli.printers import print_conversion

    summary = convert_conll(write_conll(b"\xef\xbb\xbfApple\tB-corporation\nrocks\tO\n"), tmp_path / "o.spacy")
    (doc,) = load_docs(tmp_path / "o.spacy")
    assert doc[0].text == "Apple" and [e.text for e in doc.ents] == ["Apple"]
    print_conversion(summary)
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


def test_an_existing_output_is_replaced_only_with_overwrite(write_conll, tmp_path):
    source = write_conll("a\tO\n")
    (tmp_path / "out.spacy").write_bytes(b"earlier")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        convert_conll(source, tmp_path / "out.spacy")
    assert (tmp_path / "out.spacy").read_bytes() == b"earlier"
    convert_conll(source, tmp_path / "out.spacy", overwrite=True)
    assert [doc.text for doc in load_docs(tmp_path / "out.spacy")] == ["a"]


def test_a_nul_inside_a_token_is_removed_and_counted_as_a_repair(write_conll, tmp_path):
    summary = convert_conll(write_conll("Ap\x00ple\tB-corporation\nrocks\tO\n"), tmp_path / "o.spacy")
    (doc,) = load_docs(tmp_path / "o.spacy")
    assert [t.text for t in doc] == ["Apple", "rocks"] and [e.text for e in doc.ents] == ["Apple"]
    assert [(r.where.endswith("data.conll:1"), "NUL" in r.problem) for r in summary.repairs] == [(True, True)]
    with pytest.raises(InputError, match=r"data\.conll:1: token .* contains a NUL character \(strict mode"):
        convert_conll(write_conll("Ap\x00ple\tO\n"), tmp_path / "strict.spacy", strict=True)


def test_docstart_lines_are_document_markers_not_tokens(write_conll, tmp_path, capsys):
    content = "-DOCSTART-\tO\n\nTom\tB-person\n\n-DOCSTART- -X- -X- O\nrocks\tO\n"
    summary = convert_conll(write_conll(content), tmp_path / "o.spacy")
    assert [doc.text for doc in load_docs(tmp_path / "o.spacy")] == ["Tom", "rocks"]
    assert summary.docstarts == 2 and summary.sentences == 2 and summary.repairs == []
    from spacy_wnut.cli.printers import print_conversion

    print_conversion(summary)
    assert "2 -DOCSTART- line(s)" in capsys.readouterr().out


def test_convert_writes_to_stdout_with_the_summary_on_stderr(write_conll, tmp_path):
    source = write_conll("Tom\tB-person\n")
    result = subprocess.run(wnut_command("convert", source, "-", "--no-progress"), capture_output=True)
    assert result.returncode == 0, result.stderr
    (tmp_path / "piped.spacy").write_bytes(result.stdout)
    assert [doc.text for doc in load_docs(tmp_path / "piped.spacy")] == ["Tom"]
    assert b"1 entities" in result.stderr


@pytest.mark.parametrize("command", ["fetch", "convert"])
def test_commands_without_a_model_import_no_transformer_stack(command, tmp_path, write_conll):
    # spaCy's thinc imports torch whenever torch is installed, so `convert` (which needs spaCy) loads
    # torch through it; what it must not load is transformers or spacy-transformers. `fetch` needs
    # no spaCy at all, so it loads no torch either.
    args = {
        "fetch": ["fetch", tmp_path / "assets", "--mirror", ASSETS],
        "convert": ["convert", write_conll("a\tO\n"), tmp_path / "o.spacy"],
    }
    code = (
        "import sys; from spacy_wnut.cli import main; code = main(sys.argv[1:]); "
        "print('LOADED', sorted(m for m in ('torch', 'transformers', 'spacy_transformers') if m in sys.modules)); "
        "sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code, *map(str, args[command])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split("LOADED")[-1]
    assert "transformers" not in loaded and "spacy_transformers" not in loaded
    if command == "fetch":
        assert "torch" not in loaded
