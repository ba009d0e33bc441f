"""`spacy train` drives the component: shipped config, gradient accumulation, frozen components."""

from pathlib import Path

import numpy
import pytest
import spacy
from spacy import util
from spacy.cli.train import train
from spacy.tokens import DocBin

from spacy_wnut.ml.hf_encoder import encoder_model

from ..util import TRAIN_DATA, ents_of, train_examples

CONFIG = Path(__file__).parents[2] / "configs" / "distilbert.cfg"


def write_corpus(tmp_path: Path) -> Path:
    nlp = spacy.blank("en")
    DocBin(docs=[eg.reference for eg in train_examples(nlp, TRAIN_DATA)]).to_disk(tmp_path / "data.spacy")
    return tmp_path / "data.spacy"


def overrides(tiny_transformer, data, **extra):
    base = {
        "paths.transformer": str(tiny_transformer),
        "paths.train": str(data),
        "paths.dev": str(data),
        "training.max_steps": 40,
        "training.eval_frequency": 20,
        "training.max_epochs": 0,
        "training.optimizer.learn_rate.initial_rate": 1e-3,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "training.optimizer.learn_rate.total_steps": 40,
        "training.logger.progress_bar": None,
    }
    base.update(extra)
    return base


def test_spacy_train_with_gradient_accumulation_learns_the_data(tiny_transformer, tmp_path):
    data = write_corpus(tmp_path)
    train(
        CONFIG,
        tmp_path / "out",
        overrides=overrides(
            tiny_transformer,
            data,
            **{
                "training.accumulate_gradient": 2,
                # The shipped config freezes pretrained embeddings; the tiny model's are random.
                "components.wnut_ner.model.freeze_embeddings": False,
            },
        ),
    )
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert ents_of(nlp.pipe([t for t, _ in TRAIN_DATA])) == [list(e) for _, e in TRAIN_DATA]


def test_spacy_train_leaves_a_frozen_component_unchanged(tiny_transformer, tmp_path):
    data = write_corpus(tmp_path)
    train(CONFIG, tmp_path / "first", overrides=overrides(tiny_transformer, data, **{"training.max_steps": 2}))
    first = spacy.load(tmp_path / "first" / "model-last")
    config = util.load_config(CONFIG)
    config["components"]["wnut_ner"] = {"source": str(tmp_path / "first" / "model-last")}
    config.to_disk(tmp_path / "frozen.cfg")
    frozen = overrides(tiny_transformer, data, **{"training.max_steps": 4, "training.frozen_components": ["wnut_ner"]})
    train(tmp_path / "frozen.cfg", tmp_path / "frozen", overrides=frozen)
    after = spacy.load(tmp_path / "frozen" / "model-last")
    assert weights(first) and weights(first).keys() == weights(after).keys()
    for name, value in weights(first).items():
        assert numpy.array_equal(value, weights(after)[name]), name


def weights(nlp) -> dict:
    """A copy of every weight of `wnut_ner`: the head's params and the transformer's state dict."""
    model = nlp.get_pipe("wnut_ner").model
    head = model.get_ref("output_layer")
    found = {f"head.{name}": head.get_param(name).copy() for name in ("W", "b")}
    transformer = encoder_model(model.get_ref("transformer"))
    found.update({name: t.detach().cpu().numpy().copy() for name, t in transformer.state_dict().items()})
    return found


def test_use_params_swaps_in_averaged_transformer_and_head_weights(tiny_transformer):
    from thinc.api import Adam

    from ..util import make_nlp

    nlp = make_nlp(tiny_transformer)
    examples = train_examples(nlp, TRAIN_DATA)
    nlp.initialize(lambda: examples)
    optimizer = Adam(1e-3, use_averages=True)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    model = nlp.get_pipe("wnut_ner").model
    shim = next(shim for node in model.walk() for shim in node.shims)
    head = model.get_ref("output_layer")
    before = weights(nlp)
    expected = {f"head.{name}": optimizer.averages[(head.id, name)] for name in ("W", "b")}
    expected.update(
        {
            name: optimizer.averages[(shim.id, name)]
            for name, _ in shim._model.named_parameters()
            if (shim.id, name) in optimizer.averages
        }
    )
    assert len(expected) > 10
    with nlp.use_params(optimizer.averages):
        inside = weights(nlp)
    for name, value in expected.items():
        assert not numpy.array_equal(value, before[name]), name
        numpy.testing.assert_allclose(inside[name], value, err_msg=name)
    for name, value in weights(nlp).items():
        assert numpy.array_equal(value, before[name]), name


def resolved_rates(tiny_transformer, data, n: int, **extra):
    """The first `n` learning rates of the shipped config's schedule, as `spacy train` resolves it."""
    import itertools

    config = util.load_config(CONFIG, overrides={**overrides(tiny_transformer, data), **extra}, interpolate=True)
    schedule = util.registry.resolve({"s": config["training"]["optimizer"]["learn_rate"]})["s"]
    return list(itertools.islice(schedule, n))


def test_the_schedule_follows_max_epochs_and_the_corpus(tiny_transformer, tmp_path):
    from spacy_wnut.training.schedules import steps_per_epoch

    data = write_corpus(tmp_path)
    settings = {
        "training.max_steps": 0,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "training.optimizer.learn_rate.total_steps": None,
    }
    batcher = util.registry.resolve(
        {
            "b": util.load_config(CONFIG, overrides={"paths.transformer": str(tiny_transformer)}, interpolate=True)[
                "training"
            ]["batcher"]
        }
    )["b"]
    per_epoch = steps_per_epoch(data, batcher)
    assert per_epoch >= 1
    for epochs in (3, 6):
        rates = resolved_rates(tiny_transformer, data, 40, **settings, **{"training.max_epochs": epochs})
        end = epochs * per_epoch
        assert rates[end - 1] > 0 and rates[end] == 0.0, (epochs, rates)
    capped = resolved_rates(
        tiny_transformer, data, 40, **{**settings, "training.max_epochs": 6, "training.max_steps": 5}
    )
    assert capped[4] > 0 and capped[5] == 0.0


def test_an_explicit_total_wins_and_nothing_to_size_by_is_an_error(tiny_transformer, tmp_path):
    data = write_corpus(tmp_path)
    rates = resolved_rates(
        tiny_transformer,
        data,
        12,
        **{"training.optimizer.learn_rate.total_steps": 10, "training.optimizer.learn_rate.warmup_steps": 2},
    )
    assert rates[9] > 0 and rates[10] == 0.0
    with pytest.raises(ValueError, match="the learning-rate schedule needs"):
        resolved_rates(
            tiny_transformer,
            None,
            5,
            **{
                "paths.train": None,
                "training.max_steps": 0,
                "training.optimizer.learn_rate.total_steps": None,
                "training.optimizer.learn_rate.warmup_steps": 2,
            },
        )


def test_model_best_records_the_step_and_train_final_retrains_on_all_data(tiny_transformer, tmp_path):
    from spacy_wnut.training.train_final import selected_step, train_final

    data = write_corpus(tmp_path)
    train(
        CONFIG,
        tmp_path / "run",
        overrides=overrides(
            tiny_transformer,
            data,
            **{
                "components.wnut_ner.model.freeze_embeddings": False,
                "training.max_steps": 30,
                "training.eval_frequency": 10,
            },
        ),
    )
    step = selected_step(tmp_path / "run" / "model-best")
    assert step in (10, 20, 30)
    tuned = spacy.load(tmp_path / "run" / "model-best", config={"components": {"wnut_ner": {"entity_bias": 0.5}}})
    tuned.to_disk(tmp_path / "tuned")
    info = train_final(
        CONFIG,
        tmp_path / "tuned",
        tmp_path / "final",
        [data, data],
        data,
        overrides={
            key: value
            for key, value in overrides(
                tiny_transformer, data, **{"components.wnut_ner.model.freeze_embeddings": False}
            ).items()
            if key not in ("training.max_steps", "training.eval_frequency")
        },
    )
    assert info == {"steps": step, "total_steps": 40, "entity_bias": 0.5}
    final = spacy.load(tmp_path / "final")
    assert final.get_pipe("wnut_ner").entity_bias == 0.5
    assert final.meta["spacy_wnut_training"]["final"] is True and final.meta["spacy_wnut_training"]["step"] == step
    assert ents_of(final.pipe([t for t, _ in TRAIN_DATA])) == [list(e) for _, e in TRAIN_DATA]


def test_train_final_needs_a_recorded_step(trained_nlp, tmp_path):
    from spacy_wnut.training.train_final import selected_step

    trained_nlp.to_disk(tmp_path / "model")
    with pytest.raises(ValueError, match="no training step recorded"):
        selected_step(tmp_path / "model")
