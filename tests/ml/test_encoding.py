"""The one encoder path: windows cut by subword count, so every token is scored; limits of odd tokenizers."""

import copy
import warnings

import pytest
from spacy.tokens import Doc

from spacy_wnut.ml.encoding import encode_for
from spacy_wnut.ml.hf_encoder import encoder_tokenizer, max_subwords

from ..util import ents_of

TAIL = "Tom Hanks is watching Game of Thrones"
# Each of these tokens is about 45 subwords for the tiny test vocabulary (one per character).
FILLER = " ".join(f"https://t.co/{'x' * 30}{i:02d}" for i in range(20))


def tail_entities(doc):
    start = len(doc.text) - len(TAIL)
    return [(e.start_char - start, e.end_char - start, e.label_) for e in doc.ents if e.start_char >= start]


def test_long_doc_is_fully_tagged(trained_nlp):
    assert len(trained_nlp.make_doc(FILLER + " " + TAIL)) < 128  # one window of tokens...
    transformer = trained_nlp.get_pipe("wnut_ner").model.get_ref("transformer")
    encoded = encode_for(trained_nlp.get_pipe("wnut_ner").model, [trained_nlp.make_doc(FILLER + " " + TAIL)])
    assert encoded.input_ids.shape[1] <= max_subwords(transformer) == 512  # ...cut into windows that fit
    assert encoded.cut_subwords == 0 and len(encoded.spans[0]) > 1
    alone = ents_of([trained_nlp(TAIL)])[0]
    assert alone and tail_entities(trained_nlp(FILLER + " " + TAIL)) == alone


def test_a_tokenizer_without_model_max_length_does_not_crash(trained_nlp):
    nlp = copy.deepcopy(trained_nlp)
    transformer = nlp.get_pipe("wnut_ner").model.get_ref("transformer")
    encoder_tokenizer(transformer).model_max_length = int(1e30)  # as some imported checkpoints have it
    assert max_subwords(transformer) == 512  # from the encoder's position embeddings
    assert tail_entities(nlp(FILLER + " " + TAIL)) == ents_of([nlp(TAIL)])[0]


def test_a_single_token_longer_than_the_encoder_is_cut_counted_and_warned(trained_nlp):
    nlp = copy.deepcopy(trained_nlp)
    ner = nlp.get_pipe("wnut_ner")
    long_token = "a." * 350  # one spaCy token; 700 subwords (the tokenizer splits at each dot)
    words = [long_token] + TAIL.split()
    doc = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    with pytest.warns(UserWarning, match=r"subword\(s\) dropped: a single token is longer than the encoder's limit"):
        doc = nlp(doc)
    assert tail_entities(doc) == ents_of([nlp(TAIL)])[0]
    assert ner.alignment_stats["subwords_cut"] == 700 + 2 - 512


def test_no_tokenizer_warning_on_long_docs(trained_nlp, recwarn, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trained_nlp(" ".join(["new york"] * 400))
    assert "Token indices sequence length" not in caplog.text
