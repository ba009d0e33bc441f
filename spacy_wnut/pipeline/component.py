"""The `wnut_ner` factory: a transformer subword tagger that sets `doc.ents`."""

import math
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
from confection import ConfigValidationError
from spacy import util
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline.trainable_pipe import TrainablePipe
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..errors import ConfigError, InputError, UserError, describe_config_error
from ..ml.alignment import AGGREGATIONS, PROJECTIONS, TokenRows, project_gold
from ..ml.backbones import resolve_backbone
from ..ml.chunking import DEFAULT_BATCH_SUBWORDS
from ..ml.encoder_output import install_extension, split_by_doc
from ..ml.encoding import doc_lengths, model_encoding
from ..ml.head import SubwordScores
from ..ml.legacy import register_legacy_names
from ..ml.onnx_tagger import RUNTIME_HINT, is_runtime_model
from ..ml.tagger import apply_frozen_embeddings
from .decode import DECODERS, EntitySpans, TaggedBatch, TokenProbs, decode_entities, softmax, tag_probs, token_probs
from .engines import ONNX_ENGINES, EngineRunner
from .schemes import HeadScheme, TagScheme
from .soft_targets import aligned_targets, distillation_loss, project_targets, target_labels

# The distillation loss's defaults (`spacy wnut distill`), chosen on WNUT 17 dev (docs/distill.md).
DEFAULT_DISTILL_ALPHA = 0.5
DEFAULT_DISTILL_TEMPERATURE = 2.0

DEFAULT_MODEL_STR = """
[model]
@architectures = "spacy_wnut.SubwordTagger.v2"
dropout = 0.1
freeze_embeddings = false
casing_features = false
token_features = null

[model.transformer]
@architectures = "spacy_wnut.HFEncoder.v1"
name = "distilbert/distilbert-base-uncased"
mixed_precision = false
grad_scaler_config = {}
transformer_config = {}

[model.transformer.get_spans]
@span_getters = "spacy_wnut.strided_spans.v1"
window = 128
stride = 96
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_STR)["model"]
# Pipelines and configs of spacy-wnut 0.3 and earlier name spacy-transformers' encoder.
register_legacy_names()


@Language.factory(
    "wnut_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "aggregation": "first",
        "label_projection": "first",
        "overwrite_ents": False,
        "spans_key": None,
        "store_trf_data": False,
        "entity_bias": 0.0,
        "temperature": 1.0,
        "min_score": None,
        "distill_alpha": DEFAULT_DISTILL_ALPHA,
        "distill_temperature": DEFAULT_DISTILL_TEMPERATURE,
        "decoder": "viterbi",
        "engine": "torch",
        "n_threads": None,
        "batch_subwords": DEFAULT_BATCH_SUBWORDS,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_wnut_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], SubwordScores],
    aggregation: str,
    label_projection: str,
    overwrite_ents: bool,
    spans_key: Optional[str],
    store_trf_data: bool,
    entity_bias: float,
    temperature: float,
    min_score: Optional[float],
    distill_alpha: float,
    distill_temperature: float,
    decoder: str,
    engine: str,
    n_threads: Optional[int],
    batch_subwords: Optional[int],
    scorer: Optional[Callable],
) -> "SubwordNER":
    """Create a transformer subword tagger that sets `doc.ents`.

    aggregation (str): subword scores -> token scores: "first", "average" or "max".
    label_projection (str): gold tags on "first" subword only (HF recipe) or "all".
    overwrite_ents (bool): replace entities set by earlier components, or keep them
        and add only predictions that do not overlap them.
    spans_key (Optional[str]): also write `doc.spans[spans_key]` with
        `attrs["scores"]`: each entity's probability, the marginal of the
        decoder's tag-sequence distribution (`pipeline/marginals.py`).
    store_trf_data (bool): keep the encoder's output on `doc._.trf_data`
        (a `spacy_wnut.ml.encoder_output.DocEncoderOutput`: windows, subword
        ids, last hidden state, token-row alignment); engine "torch" only.
    entity_bias (float): added to the log-probability of every B-/I- tag before
        decoding; above 0 trades precision for recall. `python -m spacy_wnut
        tune-bias` picks it on a dev set.
    temperature (float): the entity probabilities' temperature (above 1 softens
        them); `tune-bias` fits it on a dev set. Entities do not depend on it.
    min_score (Optional[float]): drop entities whose probability is below it
        (None: keep every entity).
    distill_alpha (float): in training on a teacher's soft targets (`spacy wnut distill`), the
        weight of the teacher's term against gold's: the loss is `α · T² · KL(teacher ‖ student)
        + (1 − α) · cross-entropy(gold)` where both exist (`pipeline/soft_targets.py`). Unused
        on examples without soft targets.
    distill_temperature (float): T, the temperature both distributions are softened by in that loss.
    decoder (str): "viterbi" (default) decodes the best valid BIO sequence;
        "argmax" takes each token's best tag and lets an invalid I-X start an
        entity, exactly as `pipeline("token-classification")` groups them.
    engine (str): what runs the tagger at prediction time: "torch" (fp32, the
        trained encoder called directly), "torch-int8" (torchao dynamic int8),
        "onnx" or "onnx-int8" (ONNX Runtime). Built from the trained weights on
        first use; training always runs the Thinc model.
    n_threads (Optional[int]): CPU threads for the forward pass (sets torch's
        and ONNX Runtime's); None keeps torch's setting.
    batch_subwords (Optional[int]): on a CPU, run the encoder on each batch's
        windows sorted by length, in chunks of at most this many padded
        subwords (1.8-4.7x the words/s of one padded call at batch 64); None: one
        call per batch. A torch encoder on a GPU always takes the whole batch.
    """
    return SubwordNER(
        nlp.vocab,
        model,
        name,
        aggregation=aggregation,
        label_projection=label_projection,
        overwrite_ents=overwrite_ents,
        spans_key=spans_key,
        store_trf_data=store_trf_data,
        entity_bias=entity_bias,
        temperature=temperature,
        min_score=min_score,
        distill_alpha=distill_alpha,
        distill_temperature=distill_temperature,
        decoder=decoder,
        engine=engine,
        n_threads=n_threads,
        batch_subwords=batch_subwords,
        scorer=scorer,
    )


class SubwordNER(TrainablePipe):
    """Named entities from a transformer that predicts on subwords.

    Subword scores are aggregated onto spaCy tokens by character-offset
    alignment, decoded into valid BIO with constrained Viterbi and written
    as `doc.ents`. What runs the encoder at prediction time is the
    `EngineRunner` in `self.engine_runner`; the decoding math is `decode.py`'s.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "wnut_ner",
        *,
        aggregation: str = "first",
        label_projection: str = "first",
        overwrite_ents: bool = False,
        spans_key: Optional[str] = None,
        store_trf_data: bool = False,
        entity_bias: float = 0.0,
        temperature: float = 1.0,
        min_score: Optional[float] = None,
        distill_alpha: float = DEFAULT_DISTILL_ALPHA,
        distill_temperature: float = DEFAULT_DISTILL_TEMPERATURE,
        decoder: str = "viterbi",
        engine: str = "torch",
        n_threads: Optional[int] = None,
        batch_subwords: Optional[int] = DEFAULT_BATCH_SUBWORDS,
        scorer: Optional[Callable] = get_ner_prf,
    ) -> None:
        """Initialize the component; see `make_wnut_ner` for the options."""
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"[{name}] aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if label_projection not in PROJECTIONS:
            raise ConfigError(f"[{name}] label_projection must be one of {PROJECTIONS}, got {label_projection!r}")
        if decoder not in DECODERS:
            raise ConfigError(f"[{name}] decoder must be one of {DECODERS}, got {decoder!r}")
        if engine != "torch" and store_trf_data:
            raise ConfigError(f"[{name}] store_trf_data needs engine 'torch', got engine {engine!r}")
        if is_runtime_model(model) and engine not in ONNX_ENGINES:
            raise ConfigError(f"[{name}] a run-time pipeline runs its ONNX graph: engine must be one of {ONNX_ENGINES}")
        try:
            self.engine_runner = EngineRunner(engine, n_threads, batch_subwords)
        except ValueError as err:
            raise ConfigError(f"[{name}] {err}") from None
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        # Only labels are state saved with the weights; the options below come
        # from the pipeline's config, so a loaded pipeline honours its config.
        self.cfg: Dict = {"labels": []}
        self.aggregation = aggregation
        self.label_projection = label_projection
        self.overwrite_ents = overwrite_ents
        self.spans_key = spans_key
        self.store_trf_data = store_trf_data
        self.entity_bias = float(entity_bias)
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"[{name}] temperature must be a finite number above 0, got {temperature!r}")
        if min_score is not None and not (isinstance(min_score, (int, float)) and 0.0 <= min_score <= 1.0):
            raise ConfigError(f"[{name}] min_score must be a probability in [0, 1] or null, got {min_score!r}")
        if not (isinstance(distill_alpha, (int, float)) and 0.0 <= distill_alpha <= 1.0):
            raise ConfigError(f"[{name}] distill_alpha must be in [0, 1], got {distill_alpha!r}")
        if not (
            isinstance(distill_temperature, (int, float))
            and math.isfinite(distill_temperature)
            and distill_temperature > 0
        ):
            raise ConfigError(
                f"[{name}] distill_temperature must be a finite number above 0, got {distill_temperature!r}"
            )
        self.distill_alpha = float(distill_alpha)
        self.distill_temperature = float(distill_temperature)
        self.temperature = float(temperature)
        self.min_score = None if min_score is None else float(min_score)
        self.decoder = decoder
        self.alignment_stats: Counter = Counter()
        if store_trf_data:
            install_extension()

    @property
    def engine(self) -> str:
        """The inference engine's name."""
        return self.engine_runner.name

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels (without BIO prefixes)."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        """The labels, as `spacy init labels` stores them."""
        return list(self.labels)

    @property
    def scheme(self) -> TagScheme:
        """The IOB2 tags decoding runs on."""
        return TagScheme(self.labels)

    @property
    def head(self) -> HeadScheme:
        """The tags the head predicts: IOB2 when trained here, the checkpoint's own when imported."""
        if self.cfg.get("head_tags"):
            return HeadScheme(tuple(self.cfg["head_tags"]), self.cfg["head_scheme"])
        return HeadScheme.iob2(self.labels)

    def add_label(self, label: str) -> int:
        """Add an entity label before initialization.

        label (str): the entity type, without BIO prefix.
        RETURNS (int): 1 if the label was added, 0 if it was there already.
        """
        if not isinstance(label, str):
            raise ValueError(Errors.E187)
        if label in self.labels:
            return 0
        if self.model.has_dim("nO") and self.is_initialized():
            raise ValueError(Errors.E922.format(name=self.name, nO=self.model.get_dim("nO")))
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
        checkpoint_head: bool = False,
        checkpoint_scheme: str = "auto",
    ) -> None:
        """Read labels from the examples' gold entities and soft targets (sorted), or take `labels`, and
        load the transformer.

        get_examples (Callable[[], Iterable[Example]]): returns the training examples.
        nlp (Language): the current pipeline.
        labels (Optional[Sequence[str]]): the entity labels, in this order (e.g. from `spacy init labels`).
        checkpoint_head (bool): the transformer is a HF token-classification checkpoint:
            take its labels (`id2label`) and its classifier weights, so the
            component predicts as the checkpoint does without training.
        checkpoint_scheme (str): the checkpoint's tag scheme, one of `SCHEMES`;
            "auto" tells IOB2, BIOES, BILOU and plain labels apart (IOB1 must be named).
        """
        self._require_trainable()
        validate_get_examples(get_examples, "SubwordNER.initialize")
        util.check_lexeme_norms(self.vocab, "wnut_ner")
        if checkpoint_head:
            from .hf_head import read_head_scheme

            if labels is not None:
                raise ConfigError(f"[{self.name}] give either `labels` or `checkpoint_head`, not both")
            head = read_head_scheme(self.checkpoint_name, checkpoint_scheme)
            self.cfg.update(labels=list(head.labels), head_tags=list(head.tags), head_scheme=head.kind)
        elif labels is not None:
            for label in labels:
                self.add_label(label)
        else:
            found = set()
            for example in get_examples():
                found.update(ent.label_ for ent in example.reference.ents)
                found.update(target_labels(example.reference))
            for label in sorted(found):
                self.add_label(label)
        self._require_labels()
        doc_sample = [eg.predicted for eg in islice(get_examples(), 10)]
        if not doc_sample:
            raise ValueError(Errors.E923.format(name=self.name))
        self.model.set_dim("nO", len(self.head.tags), force=True)
        self.model.initialize(X=doc_sample)
        self.engine_runner.invalidate()
        if checkpoint_head:
            from .hf_head import load_classifier

            load_classifier(self.model, self.checkpoint_name)

    @property
    def is_runtime(self) -> bool:
        """Whether this is a run-time pipeline's component (`spacy_wnut.OnnxTagger.v1`: prediction only)."""
        return is_runtime_model(self.model)

    def _require_trainable(self) -> None:
        if self.is_runtime:
            raise ConfigError(f"[{self.name}] {RUNTIME_HINT}")

    @property
    def checkpoint_name(self) -> str:
        """The transformer's HF name or directory, as configured (offline backbone names resolved)."""
        return resolve_backbone(self.model.get_ref("transformer").attrs["name"])

    def predict(self, docs: Iterable[Doc]) -> TaggedBatch:
        """Decode entities for a batch of docs; does not touch the docs.

        docs (Iterable[Doc]): the docs to predict on.
        RETURNS (TaggedBatch): entity spans over the batch, as `set_annotations` takes them.
        """
        docs = list(docs)
        if not doc_lengths(docs).sum():
            empty = numpy.zeros((0,), dtype="i")
            return TaggedBatch(doc_lengths(docs), EntitySpans(empty, empty, empty, empty.astype("f")))
        return self.decode(self.subword_scores(docs))

    def subword_scores(self, docs: List[Doc]) -> SubwordScores:
        """Tag scores of every subword row of a batch (docs with at least one token in all)."""
        if self.store_trf_data:
            return self.model.predict(docs)
        return self.engine_runner.scores(self.model, docs)

    def decode(self, output: SubwordScores) -> TaggedBatch:
        """Subword scores -> token probabilities -> tags -> entity spans (`decode.py`)."""
        probs = self.token_probs(output)
        self.alignment_stats["tokens_without_subwords"] += int((~probs.has_rows).sum())
        if output.cut_subwords:
            self.alignment_stats["subwords_cut"] += output.cut_subwords
        entities = decode_entities(probs, self.scheme, self.decoder, self.entity_bias, self.temperature)
        if self.min_score is not None:
            entities = entities.keep(entities.scores >= self.min_score)
        per_doc = None
        if self.store_trf_data and output.encoder_output is not None:
            per_doc = split_by_doc(*output.encoder_output)
        return TaggedBatch(output.doc_lengths, entities, per_doc)

    def token_probs(self, output: SubwordScores) -> TokenProbs:
        """IOB2 tag probabilities per token, with this component's head and aggregation."""
        return token_probs(output, self.head, self.aggregation)

    def tag_probs(self, probs: TokenProbs) -> numpy.ndarray:
        """Each token's tag probabilities under the distribution the entities and their scores come from.

        probs (TokenProbs): the batch's token probabilities (`token_probs`).
        RETURNS (numpy.ndarray): (n_tokens, n_tags) marginals, with `entity_bias` and `temperature`.
        """
        return tag_probs(probs, self.scheme, self.entity_bias, self.temperature)

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Tag a stream of docs in batches of similar length; docs come out in input order.

        Docs are read in buffers of `PIPE_BUFFER_BATCHES` batches and sorted by
        subword count, so that windows padded together are of similar length.

        stream (Iterable[Doc]): the docs.
        batch_size (int): docs per batch.
        YIELDS (Doc): the docs, annotated, in input order.
        """
        error_handler = self.get_error_handler()
        for buffer in util.minibatch(stream, size=batch_size * PIPE_BUFFER_BATCHES):
            order = range(len(buffer))
            if batch_size > 1:
                lengths = self._subword_counts(buffer)
                order = sorted(order, key=lengths.__getitem__)
            for start in range(0, len(buffer), batch_size):
                batch = [buffer[i] for i in order[start : start + batch_size]]
                try:
                    self.set_annotations(batch, self.predict(batch))
                except Exception as e:
                    error_handler(self.name, self, batch, e)
            yield from buffer

    def _subword_counts(self, docs: List[Doc]) -> List[int]:
        """Subwords per doc by the model's tokenizer (text length before it is loaded)."""
        tokenizer, _ = model_encoding(self.model) if self.is_initialized() else (None, None)
        if tokenizer is None:
            return [len(doc.text) for doc in docs]
        return tokenizer.count([doc.text for doc in docs])

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights with `sgd`; an inference engine built from the old ones is dropped."""
        from ..ml.optimizer import finish_update

        self._require_trainable()
        finish_update(self.model, sgd)
        self.engine_runner.invalidate()

    def use_params(self, params: Dict) -> Iterator[None]:
        """Use `params` (e.g. `optimizer.averages`) while the caller's block runs.

        Unlike `Model.use_params`, this also swaps the transformer's weights, so
        `Adam.v1(use_averages=true)` evaluates and saves the averaged encoder.
        A generator, as `Language.use_params` expects of a pipe.
        """
        from ..ml.optimizer import swapped_params

        with swapped_params(self.model, params) as n_swapped:
            if n_swapped:
                self.engine_runner.invalidate()
            try:
                yield
            finally:
                if n_swapped:
                    self.engine_runner.invalidate()

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save as any spaCy pipe; an ONNX engine's graph is saved beside the weights."""
        super().to_disk(path, exclude=exclude)
        if self.is_initialized():
            self.engine_runner.to_disk(path, self.model)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "SubwordNER":
        """Load as any spaCy pipe, naming the file that is missing or damaged; reuse a saved ONNX graph."""
        check_component_dir(Path(path), self.name)
        check_component_cfg(Path(path) / "cfg", self.name)
        try:
            super().from_disk(path, exclude=exclude)
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise InputError(
                f"[{self.name}] {Path(path) / 'model'}",
                f"cannot load the saved weights ({type(err).__name__}: {err})",
            ) from None
        self._after_load()
        self.engine_runner.from_disk(path)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "SubwordNER":
        """Load weights and cfg; any engine is rebuilt from them on first use."""
        super().from_bytes(bytes_data, exclude=exclude)
        self._after_load()
        self.engine_runner.invalidate()
        return self

    def _after_load(self) -> None:
        if not self.is_runtime:
            apply_frozen_embeddings(self.model)

    def is_initialized(self) -> bool:
        """Whether the head has weights (after `initialize` or loading)."""
        return self.model.get_ref("output_layer").has_param("W")

    def set_annotations(self, docs: Iterable[Doc], batch: TaggedBatch) -> None:
        """Write the decoded entities to `doc.ents` (and `doc.spans[spans_key]`)."""
        docs = list(docs)
        offsets = numpy.concatenate([[0], numpy.cumsum(batch.doc_lengths)])
        ents = batch.entities
        doc_of_ent = numpy.searchsorted(offsets, ents.starts, side="right") - 1
        bounds = numpy.searchsorted(doc_of_ent, numpy.arange(len(docs) + 1))
        labels = self.labels
        key = self.spans_key
        for i, doc in enumerate(docs):
            lo, hi = bounds[i], bounds[i + 1]
            base = offsets[i]
            spans = [
                Span(doc, int(s - base), int(e - base), label=labels[label_id])
                for s, e, label_id in zip(ents.starts[lo:hi], ents.ends[lo:hi], ents.label_ids[lo:hi])
            ]
            doc.set_ents(self._merge_ents(doc, spans), default="outside")
            if key is not None:
                doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": ents.scores[lo:hi].copy()})
        if batch.encoder_output is not None:
            for doc, data in zip(docs, batch.encoder_output):
                doc._.trf_data = data

    def _merge_ents(self, doc: Doc, spans: List[Span]) -> List[Span]:
        if self.overwrite_ents or not doc.ents:
            return spans
        taken = numpy.zeros(len(doc), dtype=bool)
        for ent in doc.ents:
            taken[ent.start : ent.end] = True
        return list(doc.ents) + [span for span in spans if not taken[span.start : span.end].any()]

    def get_loss(self, examples: Iterable[Example], output: SubwordScores) -> Tuple[float, Floats2d]:
        """Softmax cross-entropy on subwords, gold projected from `get_aligned_ner()`; where examples
        carry a teacher's soft targets (`spacy wnut distill`), the distillation loss of
        `soft_targets.distillation_loss` with `distill_alpha` and `distill_temperature`.

        Tokens whose gold is unknown (`None`: misaligned tokenization, or
        missing annotation) give no gold signal.

        examples (Iterable[Example]): the batch, gold in `example.reference`.
        output (SubwordScores): the model's scores for the batch.
        RETURNS (Tuple[float, Floats2d]): the loss and its gradient w.r.t. the scores.
        """
        examples = list(examples)
        validate_examples(examples, "SubwordNER.get_loss")
        head = self.head
        token_gold = numpy.concatenate(
            [head.encode(eg.get_aligned_ner()) for eg in examples] or [numpy.zeros((0,), "i")]
        )
        pairs = TokenRows.from_ragged(output.align)
        scores = self.model.ops.to_numpy(output.scores)
        self._count_gold_alignment(token_gold, pairs)
        row_gold = project_gold(token_gold, pairs, self.label_projection, scores.shape[0], output.window_length)
        token_targets = self._token_targets(examples, head)
        if token_targets is not None:
            row_targets = project_targets(
                token_targets, pairs, self.label_projection, scores.shape[0], output.window_length
            )
            loss, d_scores = distillation_loss(
                scores, row_gold, row_targets, self.distill_alpha, self.distill_temperature
            )
            return loss, self.model.ops.asarray2f(d_scores)
        rows = numpy.flatnonzero(row_gold >= 0)
        probs = softmax(scores)
        d_scores = numpy.zeros_like(probs)
        if len(rows):
            d_scores[rows] = probs[rows]
            d_scores[rows, row_gold[rows]] -= 1.0
            d_scores /= len(rows)
            loss = float(-numpy.log(numpy.maximum(probs[rows, row_gold[rows]], 1e-12)).mean())
        else:
            loss = 0.0
        if numpy.isnan(loss):
            raise ValueError(Errors.E910.format(name=self.name))
        return loss, self.model.ops.asarray2f(d_scores)

    def _token_targets(self, examples: Sequence[Example], head: HeadScheme) -> Optional[numpy.ndarray]:
        """The batch's soft targets per predicted token (NaN rows: none), or None when no example has any."""
        per_example = [aligned_targets(eg, head.tags) for eg in examples]
        if all(targets is None for targets in per_example):
            return None
        n_tags = len(head.tags)
        return numpy.concatenate(
            [
                numpy.full((len(eg.predicted), n_tags), numpy.nan, dtype="f") if targets is None else targets
                for eg, targets in zip(examples, per_example)
            ]
        )

    def _count_gold_alignment(self, token_gold: numpy.ndarray, pairs: TokenRows) -> None:
        has_rows = pairs.has_rows()
        self.alignment_stats["gold_tokens_unknown"] += int((token_gold < 0).sum())
        self.alignment_stats["gold_entity_tokens_without_subwords"] += int(((token_gold > 0) & ~has_rows).sum())

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: one forward/backward pass, then `sgd` if given.

        examples (Iterable[Example]): the batch.
        drop (float): the dropout rate.
        sgd (Optional[Optimizer]): the optimizer.
        losses (Optional[Dict[str, float]]): losses so far, updated in place.
        RETURNS (Dict[str, float]): the losses, this component's included.
        """
        self._require_trainable()
        examples = list(examples)
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, "SubwordNER.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        output, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, output)
        backprop(d_scores)
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses


# Docs sorted by length together in `pipe`, in batches.
PIPE_BUFFER_BATCHES = 8
# Files `wnut_ner` writes in its directory (`to_disk`), each of which `from_disk` needs.
COMPONENT_FILES = ("cfg", "model")


def check_component_dir(path: Path, name: str) -> None:
    """Raise a clear error naming the missing file of a saved component (or the path that is no directory)."""
    if not path.is_dir():
        raise InputError(f"[{name}] {path}", "the saved component is missing (no such directory)")
    for file in COMPONENT_FILES:
        if not (path / file).exists():
            raise InputError(f"[{name}] {path / file}", "missing; the saved pipeline is incomplete")


def check_component_cfg(path: Path, name: str) -> None:
    """Raise a clear error for a saved component's `cfg` that is not the JSON object `to_disk` writes."""
    import srsly

    try:
        cfg = srsly.read_json(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise InputError(f"[{name}] {path}", f"not valid JSON ({type(err).__name__}: {err})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("labels"), list):
        raise InputError(f"[{name}] {path}", "not a wnut_ner cfg (a JSON object with a list of 'labels')")


def load_pipeline(name: Union[str, Path], **kwargs) -> Language:
    """`spacy.load`, with an error that names the pipeline (and the file, where spaCy's does not)."""
    path = Path(name)
    if not path.exists() and not util.is_package(str(name)):
        raise InputError(str(name), "no pipeline directory or installed pipeline package of that name")
    if path.is_dir() and not (path / "config.cfg").is_file():
        raise InputError(str(path / "config.cfg"), f"missing; {path} is not a saved spaCy pipeline")
    _require_training_stack_if_needed(path)
    try:
        return util.load_model(name, **kwargs)
    except UserError:
        raise
    except ConfigValidationError as err:
        raise InputError(f"{name}/config.cfg", f"not a valid pipeline config: {describe_config_error(err)}") from None
    except (ValueError, OSError, KeyError, TypeError) as err:
        raise InputError(str(name), f"cannot load the pipeline ({type(err).__name__}: {err})") from None


def _require_training_stack_if_needed(path: Path) -> None:
    """A trainable pipeline (a torch encoder inside) in a run-time install: say what to do, in one line."""
    config = path / "config.cfg"
    if not config.is_file():
        return
    text = config.read_text(encoding="utf-8")
    if "spacy_wnut.HFEncoder." in text or "spacy-transformers." in text:
        from ..errors import TRAIN_PACKAGES, require

        require(f"{path}: this is a trainable pipeline (a torch encoder); loading it", TRAIN_PACKAGES, "train")


def find_wnut_pipe(nlp: Language, name: Optional[str] = None) -> Tuple[str, "SubwordNER"]:
    """The pipeline's `wnut_ner` component: the one named, else the only one made by the `wnut_ner` factory.

    nlp (Language): the pipeline.
    name (Optional[str]): the component's name, if the caller was told it.
    RETURNS (Tuple[str, SubwordNER]): its name and the component.
    """
    if name is not None:
        if name not in nlp.pipe_names:
            raise ConfigError(f"--component {name}: the pipeline has no such component (it has {nlp.pipe_names})")
        pipe = nlp.get_pipe(name)
        if not isinstance(pipe, SubwordNER):
            raise ConfigError(f"--component {name}: not a wnut_ner component ({type(pipe).__name__})")
        return name, pipe
    found = [n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "wnut_ner"]
    if len(found) != 1:
        what = "no wnut_ner component" if not found else f"several wnut_ner components ({found})"
        raise ConfigError(f"the pipeline has {what}: name the one to use with --component")
    return found[0], nlp.get_pipe(found[0])
