"""The `wnut_ner` component, in the style of spaCy's own pipeline tests."""

import os
import pickle
import shutil
import subprocess
import sys

import numpy
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy.training import Example

from spacy_wnut.ml.hf_encoder import encoder_model, subword_tokenizer

from ..util import TRAIN_DATA, ents_of, make_nlp, overfit, train_examples

TEXTS = [text for text, _ in TRAIN_DATA]
GOLD = [[(s, e, label) for s, e, label in ents] for _, ents in TRAIN_DATA]


def test_factory_is_found_through_entry_points_without_import(tiny_transformer):
    code = (
        "import spacy\n"
        "nlp = spacy.blank('en')\n"
        f"nlp.add_pipe('wnut_ner', config={{'model': {{'transformer': {{'name': {str(tiny_transformer)!r}}}}}}})\n"
        "print(type(nlp.get_pipe('wnut_ner')).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "SubwordNER"


def test_overfitting_IO(trained_nlp, tmp_path):
    nlp = trained_nlp
    assert ents_of(nlp.pipe(TEXTS)) == GOLD
    nlp.to_disk(tmp_path)
    loaded = spacy.load(tmp_path)
    assert ents_of(loaded.pipe(TEXTS)) == GOLD
    # pipe in batches, pipe twice and one at a time all agree
    assert ents_of(nlp.pipe(TEXTS, batch_size=1)) == ents_of(nlp.pipe(TEXTS)) == ents_of([nlp(t) for t in TEXTS])


def test_overfitting_loss_is_tiny(tiny_transformer):
    losses = overfit(make_nlp(tiny_transformer))
    assert losses["wnut_ner"] < 0.05


@pytest.mark.parametrize("aggregation,projection", [("average", "all"), ("max", "all"), ("first", "all")])
def test_aggregations_and_projections_learn_the_data(tiny_transformer, aggregation, projection):
    nlp = make_nlp(tiny_transformer, aggregation=aggregation, label_projection=projection)
    overfit(nlp)
    assert ents_of(nlp.pipe(TEXTS)) == GOLD


def test_to_bytes_from_bytes_gives_same_predictions(trained_nlp, tiny_transformer):
    fresh = make_nlp(tiny_transformer)
    fresh.from_bytes(trained_nlp.to_bytes())
    assert ents_of(fresh.pipe(TEXTS)) == GOLD


def test_a_reloaded_encoder_keeps_its_exact_layer_norm_eps(model_dir, trained_nlp, tiny_transformer):
    """The encoder's config.json is saved exactly (spacy-transformers' JSON writer kept 10 decimals: 1e-12 -> 0.0)."""
    import torch

    from_bytes = make_nlp(tiny_transformer).from_bytes(trained_nlp.to_bytes())
    for nlp in (spacy.load(model_dir), from_bytes):
        encoder = encoder_model(nlp.get_pipe("wnut_ner").model.get_ref("transformer"))
        assert encoder.config.layer_norm_eps == 1e-12
        assert {m.eps for m in encoder.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-12}


def test_pickle_gives_same_predictions(trained_nlp):
    assert ents_of(pickle.loads(pickle.dumps(trained_nlp)).pipe(TEXTS)) == GOLD


@pytest.mark.parametrize("batch_subwords", [7, None])
def test_pickle_keeps_the_engine_settings(trained_nlp, tiny_transformer, batch_subwords):
    nlp = make_nlp(tiny_transformer, batch_subwords=batch_subwords, n_threads=1)
    nlp.from_bytes(trained_nlp.to_bytes())
    runner = pickle.loads(pickle.dumps(nlp)).get_pipe("wnut_ner").engine_runner
    assert (runner.name, runner.n_threads, runner.batch_subwords) == ("torch", 1, batch_subwords)


def test_n_process_2_equals_n_process_1(trained_nlp):
    texts = TEXTS * 3
    one = ents_of(trained_nlp.pipe(texts, n_process=1, batch_size=2))
    two = ents_of(trained_nlp.pipe(texts, n_process=2, batch_size=2))
    assert len(two) == len(texts) and sum(map(len, two)) > 0
    assert one == two


def test_saved_pipeline_loads_offline_without_the_original_model(tiny_transformer, tmp_path):
    source = tmp_path / "hf-model"
    shutil.copytree(tiny_transformer, source)
    nlp = make_nlp(source)
    overfit(nlp, steps=40)
    nlp.to_disk(tmp_path / "pipeline")
    want = ents_of(nlp.pipe(TEXTS))
    shutil.rmtree(source)
    empty_cache = tmp_path / "hf-home"
    empty_cache.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(empty_cache))
    code = (
        "import spacy, json, sys\n"
        f"nlp = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        f"print(json.dumps([[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe({TEXTS!r})]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    import json

    assert [[tuple(e) for e in doc] for doc in json.loads(out.stdout)] == want


def test_no_labels_is_an_error(tiny_transformer):
    nlp = make_nlp(tiny_transformer)
    examples = train_examples(nlp, [("nothing here", [])])
    with pytest.raises(ValueError, match="not initialized"):
        nlp.initialize(lambda: examples)


def test_initialize_takes_a_label_list(tiny_transformer):
    nlp = make_nlp(tiny_transformer)
    examples = train_examples(nlp)
    nlp.get_pipe("wnut_ner").initialize(lambda: examples, nlp=nlp, labels=["person", "group"])
    ner = nlp.get_pipe("wnut_ner")
    assert ner.labels == ("person", "group") and ner.label_data == ["person", "group"]
    assert ner.model.get_dim("nO") == 5


def test_initialize_rejects_bad_get_examples(tiny_transformer):
    ner = make_nlp(tiny_transformer).get_pipe("wnut_ner")
    with pytest.raises(TypeError):
        ner.initialize(lambda: None)
    with pytest.raises(TypeError):
        ner.initialize(train_examples(spacy.blank("en")))


def test_add_label_after_initialize_is_an_error(trained_nlp):
    with pytest.raises(ValueError):
        pickle.loads(pickle.dumps(trained_nlp)).get_pipe("wnut_ner").add_label("brand-new")


def test_empty_training_batch_changes_nothing(tiny_transformer):
    nlp = make_nlp(tiny_transformer)
    optimizer = nlp.initialize(lambda: train_examples(nlp))
    ner = nlp.get_pipe("wnut_ner")
    assert ner.update([], sgd=optimizer) == {"wnut_ner": 0.0}
    empty = [Example.from_dict(nlp.make_doc(""), {"entities": []})]
    assert ner.update(empty, sgd=optimizer) == {"wnut_ner": 0.0}


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "   \n\t ",
        "check https://t.co/AbC123xyz?x=1&y=2 now",
        "@paulwalk says hi to @Tom_Hanks #GameOfThrones #tbt",
        "Wolfgang 🚀 Amadeus 🇺🇸 ❤\ufe0f \ufe0f",
        "zero\u200bwidth and bom\ufeff and tab\x07bell \x00 null",
        "\u200b \ufeff \ufe0f",
    ],
)
def test_hard_texts_are_tagged_without_crashing(trained_nlp, text):
    doc = trained_nlp(text)
    assert all(token.ent_iob_ in ("B", "I", "O") for token in doc)
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)


@pytest.mark.parametrize("text", ["Wolfgang 🚀 Amadeus", "Tom 🇺🇸 Hanks rocks 👍🏽!", "a\u200bb 𝔘𝔫𝔦 z"])
def test_non_bmp_characters_keep_each_token_on_its_own_subwords(trained_nlp, text):
    """Every token's subword rows spell that token (or [UNK]): nothing shifts after an emoji."""
    doc = trained_nlp.make_doc(text)
    model = trained_nlp.get_pipe("wnut_ner").model
    output = model.predict([doc])
    encoded, _ = output.encoder_output
    backend = subword_tokenizer(model.get_ref("transformer")).backend
    pieces = [backend.id_to_token(int(i)) for row in encoded.input_ids for i in row]
    lengths, rows = output.align.lengths, output.align.dataXd
    start = 0
    for token, n in zip(doc, lengths):
        spelled = "".join(pieces[r].replace("##", "") for r in rows[start : start + n])
        start += n
        assert spelled in (token.lower_.replace("\u200b", ""), "[UNK]", ""), (token.text, spelled)
    assert all(n > 0 for token, n in zip(doc, lengths) if token.text.isalpha())


def test_tokens_without_subwords_are_counted_and_never_start_entities(trained_nlp):
    ner = trained_nlp.get_pipe("wnut_ner")
    before = ner.alignment_stats["tokens_without_subwords"]
    doc = trained_nlp(Doc(trained_nlp.vocab, words=["\ufe0f", "Tom", "Hanks", "\u200b", "rocks"]))
    assert ner.alignment_stats["tokens_without_subwords"] - before == 2
    assert doc[0].ent_iob_ == "O" and doc[3].ent_iob_ in ("O", "I")


def test_any_tokenization_is_tagged(trained_nlp):
    words = ["Tom", "Ha", "nks", "is", "watching", "Game", "of", "Thr", "ones"]
    doc = trained_nlp(
        Doc(trained_nlp.vocab, words=words, spaces=[True, False, True, True, True, True, True, False, False])
    )
    assert doc.text == "Tom Hanks is watching Game of Thrones"
    assert [(e.text, e.label_) for e in doc.ents] == [("Tom Hanks", "person"), ("Game of Thrones", "creative-work")]


def test_training_with_a_different_gold_tokenization_counts_unknown_tokens(tiny_transformer):
    nlp = make_nlp(tiny_transformer)
    reference = Doc(nlp.vocab, words=["NewYork", "rocks"], ents=["B-location", "O"])
    predicted = Doc(nlp.vocab, words=["New", "York", "rocks"], spaces=[False, True, False])
    examples = [Example(predicted, reference)] + train_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer)
    stats = nlp.get_pipe("wnut_ner").alignment_stats
    assert stats["gold_tokens_unknown"] == 0  # split gold tokens still get B-/I- from the reference
    assert examples[0].get_aligned_ner() == ["B-location", "L-location", "O"]


def test_long_doc_is_fully_tagged(trained_nlp):
    words = ("Tom Hanks is watching Game of Thrones .".split()) * 625
    assert len(words) == 5000
    ner = trained_nlp.get_pipe("wnut_ner")
    before = ner.alignment_stats["tokens_without_subwords"]
    doc = trained_nlp(Doc(trained_nlp.vocab, words=words))
    assert len(doc) == 5000 and all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    assert ner.alignment_stats["tokens_without_subwords"] == before
    labelled = [e for e in doc.ents if e.start >= 4900]
    assert labelled, "the tail of a long doc must be tagged too"


def test_existing_entities_are_kept_unless_overwrite(trained_nlp, tiny_transformer):
    for overwrite, expected in [(False, "product"), (True, "corporation")]:
        nlp = make_nlp(tiny_transformer, overwrite_ents=overwrite)
        nlp.from_bytes(trained_nlp.to_bytes())
        ruler = nlp.add_pipe("entity_ruler", before="wnut_ner")
        ruler.add_patterns([{"label": "product", "pattern": "apple inc"}])
        doc = nlp("apple inc rocks")
        assert [(e.text, e.label_) for e in doc.ents] == [("apple inc", expected)]


def test_spans_key_carries_entity_scores(trained_nlp, tiny_transformer):
    nlp = make_nlp(tiny_transformer, spans_key="wnut_scores")
    nlp.from_bytes(trained_nlp.to_bytes())
    doc = nlp(TEXTS[1])
    group = doc.spans["wnut_scores"]
    assert [(s.text, s.label_) for s in group] == [(e.text, e.label_) for e in doc.ents]
    scores = group.attrs["scores"]
    assert len(scores) == 2 and all(0.5 < s <= 1.0 for s in scores)


def test_transformer_data_is_kept_only_when_asked(trained_nlp, tiny_transformer):
    doc = trained_nlp(TEXTS[0])
    assert not Doc.has_extension("trf_data") or doc._.trf_data is None
    nlp = make_nlp(tiny_transformer, store_trf_data=True)
    nlp.from_bytes(trained_nlp.to_bytes())
    doc = nlp(TEXTS[0])
    data = doc._.trf_data
    assert data.width == 32 and data.hidden.shape == (data.input_ids.size, 32)
    assert len(data.align.lengths) == len(doc) and data.align.dataXd.max() < data.input_ids.size


@pytest.mark.parametrize(
    "config,message",
    [
        ({"aggregation": "median"}, "aggregation must be one of"),
        ({"label_projection": "last"}, "label_projection must be one of"),
        ({"model": {"transformer": {"get_spans": {"window": 128, "stride": 32}}}}, "window // 2 <= stride <= window"),
    ],
)
def test_bad_config_values_are_rejected_early(tiny_transformer, config, message):
    with pytest.raises(ValueError, match=message):
        make_nlp(tiny_transformer, **config)


def test_score_reports_entity_prf_per_type(trained_nlp):
    examples = [Example(trained_nlp(eg.text), eg.reference) for eg in train_examples(trained_nlp)]
    scores = trained_nlp.get_pipe("wnut_ner").score(examples)
    assert scores["ents_f"] == 1.0 and set(scores["ents_per_type"]) == {
        "location",
        "person",
        "creative-work",
        "corporation",
    }


def test_frozen_component_is_not_updated(tiny_transformer):
    nlp = make_nlp(tiny_transformer)
    examples = train_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    head = nlp.get_pipe("wnut_ner").model.get_ref("output_layer")
    before = head.get_param("W").copy()
    nlp.update(examples, sgd=optimizer, exclude=["wnut_ner"])
    assert numpy.array_equal(before, head.get_param("W"))
    nlp.update(examples, sgd=optimizer)
    assert not numpy.array_equal(before, head.get_param("W"))


ALPHABET = list("abcXYZ019#@.'-") + [
    "🚀",
    "\U0001f1fa",
    "\U0001f1f8",
    "\u200b",
    "\ufe0f",
    "\ufeff",
    "\x07",
    "é",
    "ß",
    "新",
]


@settings(max_examples=40, deadline=None)
@given(
    words=st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=6), min_size=1, max_size=25),
    data=st.data(),
)
def test_any_text_and_tokenization_gives_entities_on_token_boundaries(trained_nlp, words, data):
    spaces = data.draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    doc = trained_nlp(Doc(trained_nlp.vocab, words=words, spaces=spaces))
    previous_end = 0
    for ent in doc.ents:
        assert previous_end <= ent.start < ent.end <= len(doc)
        assert doc[ent.start].ent_iob_ == "B" and all(t.ent_iob_ == "I" for t in doc[ent.start + 1 : ent.end])
        previous_end = ent.end
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)


def test_freeze_embeddings_keeps_word_embeddings_fixed(tiny_transformer):
    nlp = make_nlp(tiny_transformer, model={"freeze_embeddings": True, "transformer": {"name": str(tiny_transformer)}})
    examples = train_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    encoder = encoder_model(nlp.get_pipe("wnut_ner").model.get_ref("transformer"))
    embeddings = encoder.get_input_embeddings().weight.detach().clone()
    layer = encoder.encoder.layer[0].attention.self.query.weight.detach().clone()
    nlp.update(examples, sgd=optimizer)
    assert (encoder.get_input_embeddings().weight == embeddings).all()
    assert not (encoder.encoder.layer[0].attention.self.query.weight == layer).all()


@pytest.fixture(scope="module")
def casing_nlp(tiny_transformer):
    nlp = make_nlp(tiny_transformer, model={"casing_features": True, "transformer": {"name": str(tiny_transformer)}})
    overfit(nlp)
    return nlp


def test_casing_features_learn_and_round_trip(casing_nlp, tiny_transformer, tmp_path):
    assert ents_of(casing_nlp.pipe(TEXTS)) == GOLD
    casing = casing_nlp.get_pipe("wnut_ner").model.get_param("casing_W")
    assert casing[0].tolist() == [0.0] * casing.shape[1] and numpy.abs(casing[1:]).sum() > 0
    casing_nlp.to_disk(tmp_path)
    assert ents_of(spacy.load(tmp_path).pipe(TEXTS + ["TOM HANKS", "Apple Inc"])) == ents_of(
        casing_nlp.pipe(TEXTS + ["TOM HANKS", "Apple Inc"])
    )


def test_casing_features_cannot_be_exported(casing_nlp, tmp_path):
    from spacy_wnut.tools.hf_checkpoint import export_hf

    with pytest.raises(ValueError, match="spaCy token features"):
        export_hf(casing_nlp, tmp_path)


def test_labels_from_data_are_sorted(tiny_transformer):
    nlp = make_nlp(tiny_transformer)
    nlp.initialize(lambda: train_examples(nlp))  # first seen: location, person, creative-work, corporation
    assert nlp.get_pipe("wnut_ner").labels == ("corporation", "creative-work", "location", "person")


def test_initialize_without_any_example_is_an_error(tiny_transformer):
    ner = make_nlp(tiny_transformer).get_pipe("wnut_ner")
    with pytest.raises(TypeError, match="E930"):  # spaCy's own check; E923 guards what passes it
        ner.initialize(lambda: [], labels=["person"])
