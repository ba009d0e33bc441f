"""Head tag schemes (IOB2, IOB1, BIOES, BILOU, plain): reading `id2label`, mapping to IOB2, encoding gold."""

import numpy
import pytest

from spacy_wnut.pipeline.schemes import HeadScheme

BILUO = ["U-creative-work", "O", "B-person", "L-person", "U-person", "B-person", "I-person", "L-person", None, "-"]


def scheme(tags, kind="auto"):
    return HeadScheme.from_id2label(dict(enumerate(tags)), kind)


@pytest.mark.parametrize(
    "tags,kind",
    [
        (["O", "B-PER", "I-PER"], "IOB2"),
        (["O", "B-PER", "I-PER", "E-PER", "S-PER"], "BIOES"),
        (["O", "U-PER", "B-PER", "I-PER", "L-PER"], "BILOU"),
        (["O", "PER", "creative-work"], "plain"),
    ],
)
def test_auto_tells_schemes_apart(tags, kind):
    assert scheme(tags).kind == kind


def test_labels_keep_hyphens_and_first_appearance_order():
    assert scheme(["O", "B-creative-work", "B-person", "I-creative-work", "I-person"]).labels == (
        "creative-work",
        "person",
    )


@pytest.mark.parametrize(
    "tags,kind,message",
    [
        (["O", "B-PER", "I-PER", "MISC"], "auto", r"\['MISC'\]"),
        (["O", "PER", "B-LOC"], "plain", r"\['B-LOC'\]"),
        (["O", "B-PER", "E-PER", "U-PER"], "auto", r"prefixes \['B', 'E', 'U'\] fit no scheme"),
        (["O", "B-PER", "S-PER"], "IOB2", r"\['S-PER'\]"),
        (["B-PER", "I-PER"], "auto", "no 'O' tag"),
        (["O", "B-PER", "I-PER"], "IOB3", "unknown tag scheme"),
    ],
)
def test_unmappable_labels_are_named(tags, kind, message):
    with pytest.raises(ValueError, match=message):
        scheme(tags, kind)


def test_iob2_head_needs_no_mapping():
    head = HeadScheme.iob2(["person", "creative-work"])
    assert head.is_bio() and numpy.array_equal(head.to_bio(), numpy.eye(5, dtype="f"))
    assert list(head.encode(BILUO)) == [3, 0, 1, 2, 1, 1, 2, 2, -1, -1]


@pytest.mark.parametrize(
    "tags,kind,expected",
    [
        (
            [
                "O",
                "B-person",
                "I-person",
                "E-person",
                "S-person",
                "B-creative-work",
                "I-creative-work",
                "E-creative-work",
                "S-creative-work",
            ],
            "BIOES",
            ["S-creative-work", "O", "B-person", "E-person", "S-person", "B-person", "I-person", "E-person"],
        ),
        (
            [
                "O",
                "B-person",
                "I-person",
                "L-person",
                "U-person",
                "U-creative-work",
                "B-creative-work",
                "I-creative-work",
                "L-creative-work",
            ],
            "BILOU",
            ["U-creative-work", "O", "B-person", "L-person", "U-person", "B-person", "I-person", "L-person"],
        ),
        # IOB1: B- only where an entity directly follows one of the same type
        (
            ["O", "B-person", "I-person", "B-creative-work", "I-creative-work"],
            "IOB1",
            ["I-creative-work", "O", "I-person", "I-person", "B-person", "B-person", "I-person", "I-person"],
        ),
        (
            ["O", "person", "creative-work"],
            "plain",
            ["creative-work", "O", "person", "person", "person", "person", "person", "person"],
        ),
    ],
)
def test_gold_is_encoded_in_the_head_scheme(tags, kind, expected):
    head = scheme(tags, kind)
    ids = head.encode(BILUO)
    assert [head.tags[i] for i in ids[:8]] == expected and list(ids[8:]) == [-1, -1]


def test_to_bio_sums_probability_of_equivalent_tags():
    head = scheme(["O", "B-PER", "I-PER", "E-PER", "S-PER"])
    probs = numpy.array([[0.1, 0.2, 0.3, 0.15, 0.25]], dtype="f")
    assert numpy.allclose(probs @ head.to_bio(), [[0.1, 0.45, 0.45]])


def test_start_or_continue_tags_prefer_continuing():
    for tags, kind in [(["O", "PER"], "plain"), (["O", "I-PER", "B-PER"], "IOB1")]:
        matrix = scheme(tags, kind).to_bio()
        row = 1  # PER / IOB1 I-PER feeds both B-PER and I-PER, I- slightly more
        assert 0.99 < matrix[row, 1] < matrix[row, 2] == 1.0
