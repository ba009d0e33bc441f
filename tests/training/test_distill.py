"""`distill`: a tiny teacher's soft targets written with provenance, reused, refused when stale, and a tiny
student that learns the teacher's entities from them (with another tokenizer too) under `spacy train`."""

import json
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example

from spacy_wnut.errors import ConfigError, InputError
from spacy_wnut.pipeline.soft_targets import get_soft_targets, set_soft_targets
from spacy_wnut.training import distill as distill_module
from spacy_wnut.training.distill import (
    MANIFEST,
    check_soft_targets,
    distill,
    made_from,
    target_inputs,
    teacher_targets,
    write_soft_targets,
)
from spacy_wnut.training.soft_target_corpus import SoftTargetCorpus
from spacy_wnut.training.train_final import train_final

from ..util import ROOT, TRAIN_DATA, ents_of, make_nlp, train_examples

TEXTS = [text for text, _ in TRAIN_DATA]


@pytest.fixture
def inputs(tmp_path):
    """Labelled train and dev DocBins (TRAIN_DATA) and unlabelled texts with bad and blank lines."""
    nlp = spacy.blank("en")
    DocBin(docs=[eg.reference for eg in train_examples(nlp)]).to_disk(tmp_path / "train.spacy")
    DocBin(docs=[eg.reference for eg in train_examples(nlp)[:2]]).to_disk(tmp_path / "dev.spacy")
    (tmp_path / "texts.txt").write_bytes(("\n".join(TEXTS[:2]) + "\n\n").encode() + b"bad \xff byte\n" + b"apple inc\n")
    rows = [json.dumps({"text": TEXTS[2], "id": 1}), "{not json", json.dumps({"no_text": 1}), json.dumps({"text": "x"})]
    (tmp_path / "texts.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return tmp_path


def test_targets_are_the_teachers_token_distributions_written_with_their_provenance(model_dir, inputs, tmp_path):
    given = target_inputs(
        [inputs / "train.spacy"], inputs / "dev.spacy", [inputs / "texts.txt", inputs / "texts.jsonl"]
    )
    manifest = write_soft_targets(model_dir, tmp_path / "st", given)
    assert not manifest["reused"]
    assert manifest["teacher"]["sha256"] == made_from(model_dir, given, "torch")["teacher"]["sha256"]
    by_path = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert by_path["texts.txt"]["lines_read"] == 4 and by_path["texts.txt"]["bad_lines"] == 1
    assert by_path["texts.txt"]["blank_lines"] == 1 and by_path["texts.txt"]["docs"] == 3
    assert by_path["texts.txt"]["bad_lines_listed"] == [
        f"{inputs / 'texts.txt'}:4: undecodable bytes: b'\\xff' at byte 4"
    ]
    assert by_path["texts.jsonl"]["bad_lines"] == 2 and by_path["texts.jsonl"]["docs"] == 2
    assert by_path["train.spacy"]["docs"] == 4 and by_path["dev.spacy"]["docs"] == 2
    assert manifest == {**json.loads((tmp_path / "st" / MANIFEST).read_text()), "reused": False}
    teacher = spacy.load(model_dir)
    pipe = teacher.get_pipe("wnut_ner")
    docs = list(DocBin().from_disk(tmp_path / "st" / "train" / "00-train.spacy").get_docs(teacher.vocab))
    assert [doc.text for doc in docs] == TEXTS and [len(doc.ents) for doc in docs] == [1, 2, 1, 0]
    for doc in docs:
        targets = get_soft_targets(doc)
        expected = numpy.log(pipe.token_probs(pipe.subword_scores([doc])).probs)
        numpy.testing.assert_allclose(targets.log_probs, expected, atol=1e-4)
        assert targets.tags == tuple(pipe.scheme.tags)
    assert sorted(p.name for p in (tmp_path / "st" / "train").iterdir()) == [
        "00-train.spacy",
        "02-texts.spacy",
        "03-texts.spacy",
    ]
    assert [p.name for p in (tmp_path / "st" / "dev").iterdir()] == ["01-dev.spacy"]


def test_a_rerun_reuses_the_targets_without_running_the_teacher(model_dir, inputs, tmp_path, monkeypatch):
    given = target_inputs([inputs / "train.spacy"], inputs / "dev.spacy")
    write_soft_targets(model_dir, tmp_path / "st", given)

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(distill_module, "teacher_targets", no_teacher)
    assert write_soft_targets(model_dir, tmp_path / "st", given)["reused"]


def test_targets_of_another_teacher_or_of_changed_inputs_are_refused(model_dir, inputs, tmp_path):
    given = target_inputs([inputs / "train.spacy"], inputs / "dev.spacy", [inputs / "texts.txt"])
    write_soft_targets(model_dir, tmp_path / "st", given)
    other = shutil.copytree(model_dir, tmp_path / "other")
    config = other / "config.cfg"
    config.write_text(config.read_text().replace("entity_bias = 0.0", "entity_bias = 0.5"))
    with pytest.raises(InputError, match="another teacher"):
        write_soft_targets(other, tmp_path / "st", given)
    (inputs / "texts.txt").write_text("apple inc\n")
    with pytest.raises(InputError, match=r"unlabelled input .*texts.txt changed since it was labelled"):
        write_soft_targets(model_dir, tmp_path / "st", given)
    with pytest.raises(InputError, match="was labelled but is not given now"):
        check_soft_targets(tmp_path / "st", made_from(model_dir, given[:2], "torch"))
    with pytest.raises(InputError, match="teacher engine 'torch', this run's is 'onnx'"):
        check_soft_targets(
            tmp_path / "st",
            {
                **made_from(model_dir, given, "torch"),
                "teacher": {**made_from(model_dir, given, "torch")["teacher"], "engine": "onnx"},
            },
        )
    manifest = write_soft_targets(model_dir, tmp_path / "st", given, overwrite=True)
    assert not manifest["reused"] and manifest["inputs"][2]["docs"] == 1


@pytest.mark.parametrize(
    "problem,error,match",
    [
        (lambda p: p / "texts.csv", InputError, "no such file"),
        (lambda p: (p / "texts.csv").write_text("x\n") and p / "texts.csv", InputError, "must be a .txt"),
        (lambda p: p / "missing.spacy", InputError, "no such file or directory"),
    ],
)
def test_bad_inputs_are_named(inputs, problem, error, match):
    path = problem(inputs)
    train = [path] if path.suffix == ".spacy" else [inputs / "train.spacy"]
    unlabelled = [path] if path.suffix != ".spacy" else []
    with pytest.raises(error, match=match):
        target_inputs(train, inputs / "dev.spacy", unlabelled)


def test_nothing_to_train_on_is_refused(inputs):
    with pytest.raises(ConfigError, match="needs something to train on"):
        target_inputs([], inputs / "dev.spacy")


def test_alpha_zero_is_plain_training(tiny_transformer):
    nlp = make_nlp(tiny_transformer, distill_alpha=0.0)
    examples = train_examples(nlp)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("wnut_ner")
    distilled = [Example(eg.predicted, eg.reference.copy()) for eg in examples]
    for eg, targets in zip(distilled, teacher_targets(pipe, [eg.predicted for eg in examples])):
        set_soft_targets(eg.reference, targets)
    output = pipe.model.predict([eg.predicted for eg in examples])
    plain_loss, plain_grad = pipe.get_loss(examples, output)
    loss, grad = pipe.get_loss(distilled, output)
    assert loss == pytest.approx(plain_loss, rel=1e-5)
    numpy.testing.assert_allclose(grad, plain_grad, atol=1e-6)
    pipe.distill_alpha = 0.5
    assert pipe.get_loss(distilled, output)[0] != pytest.approx(plain_loss, rel=1e-3)


@pytest.mark.parametrize("student_backbone", ["tiny_transformer", "tiny_mpnet"])
def test_a_student_learns_the_teachers_entities_from_soft_targets_alone(model_dir, tmp_path, request, student_backbone):
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS) + "\n")
    given = target_inputs([], None, [tmp_path / "texts.txt"])
    write_soft_targets(model_dir, tmp_path / "st", given)
    student = make_nlp(request.getfixturevalue(student_backbone))
    examples = list(SoftTargetCorpus(tmp_path / "st" / "train", gold_preproc=True)(student))
    assert all(not eg.reference.has_annotation("ENT_IOB") for eg in examples)  # no gold at all
    optimizer = student.initialize(lambda: examples)
    assert student.get_pipe("wnut_ner").labels == spacy.load(model_dir).get_pipe("wnut_ner").labels
    optimizer.learn_rate = 1e-3
    for _ in range(80):
        student.update(examples, sgd=optimizer)
    teacher = spacy.load(model_dir)
    assert ents_of(student.pipe(TEXTS)) == ents_of(teacher.pipe(TEXTS))
    assert any(ents_of(teacher.pipe(TEXTS)))


def test_distill_trains_a_student_under_spacy_train_and_train_final_takes_its_targets(model_dir, inputs, tmp_path):
    steps = {
        "paths.transformer": _tiny_backbone(model_dir),
        "training.max_steps": 30,
        "training.eval_frequency": 15,
        "training.max_epochs": 0,
        "training.optimizer.learn_rate.initial_rate": 1e-3,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "training.logger.progress_bar": None,
        "components.wnut_ner.model.freeze_embeddings": False,
    }
    config = ROOT / "configs" / "distilbert.cfg"
    out = tmp_path / "distilled"
    manifest, student_config = distill(
        model_dir, config, out, [inputs / "train.spacy"], inputs / "dev.spacy", [inputs / "texts.txt"], overrides=steps
    )
    assert (out / "model-best" / "config.cfg").is_file() and student_config == out / "config.cfg"
    written = spacy.util.load_config(student_config)
    assert written["corpora"]["train"]["@readers"] == "spacy_wnut.SoftTargetCorpus.v1"
    assert written["corpora"]["train"]["gold_preproc"] is True
    with pytest.raises(InputError, match="pass --overwrite"):
        distill(model_dir, config, out, [inputs / "train.spacy"], inputs / "dev.spacy", [inputs / "texts.txt"])
    final = train_final(
        student_config,
        out / "model-best",
        tmp_path / "final",
        [out / "soft-targets" / "train", out / "soft-targets" / "dev"],
        inputs / "dev.spacy",
        overrides={"paths.train": str(out / "soft-targets" / "train")},
    )
    assert final["steps"] > 0 and (tmp_path / "final" / "config.cfg").is_file()


def _tiny_backbone(model_dir: Path) -> str:
    """The HF directory the tiny teacher was trained from (its config names it)."""
    return spacy.util.load_config(model_dir / "config.cfg")["components"]["wnut_ner"]["model"]["transformer"]["name"]
