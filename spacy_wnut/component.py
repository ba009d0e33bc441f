"""The `wnut_ner` factory: a transformer subword tagger that sets `doc.ents`."""
import os
from collections import Counter
from pathlib import Path
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
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

from .align import AGGREGATIONS, PROJECTIONS, TokenRows, aggregate, project_gold
from .decode import DECODERS, EntitySpans, TagScheme, tags_to_spans, viterbi
from .engines import ONNX_ENGINES, EngineSlot, build_engine, check_engine, engine_scores, export_onnx
from .model import SubwordScores, swapped_params
from .schemes import HeadScheme

DEFAULT_MODEL_STR = """
[model]
@architectures = "spacy_wnut.SubwordTagger.v1"
dropout = 0.1

[model.transformer]
@architectures = "spacy-transformers.TransformerModel.v3"
name = "distilbert/distilbert-base-uncased"
tokenizer_config = {"use_fast": true}
transformer_config = {}
mixed_precision = false
grad_scaler_config = {}

[model.transformer.get_spans]
@span_getters = "spacy_wnut.strided_spans.v1"
window = 128
stride = 96
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_STR)["model"]

# Decoding prior for a token with no subword (whitespace, characters the
# tokenizer drops): it may continue an entity across itself, never start one.
_NO_ROWS_LOG_PROB = {"O": 0.0, "I": numpy.log(0.5), "B": -1e4}


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
        "decoder": "viterbi",
        "engine": "torch",
        "n_threads": None,
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
    decoder: str,
    engine: str,
    n_threads: Optional[int],
    scorer: Optional[Callable],
) -> "SubwordNER":
    """Create a transformer subword tagger that sets `doc.ents`.

    aggregation (str): subword scores -> token scores: "first", "average" or "max".
    label_projection (str): gold tags on "first" subword only (HF recipe) or "all".
    overwrite_ents (bool): replace entities set by earlier components, or keep them
        and add only predictions that do not overlap them.
    spans_key (Optional[str]): also write `doc.spans[spans_key]` with
        `attrs["scores"]` (mean token probability per entity).
    store_trf_data (bool): keep the transformer output on `doc._.trf_data`.
    entity_bias (float): added to the log-probability of every B-/I- tag before
        decoding; above 0 trades precision for recall. `python -m spacy_wnut
        tune-bias` picks it on a dev set.
    decoder (str): "viterbi" (default) decodes the best valid BIO sequence;
        "argmax" takes each token's best tag and lets an invalid I-X start an
        entity, exactly as `pipeline("token-classification")` groups them.
    engine (str): what runs the tagger at prediction time: "torch" (fp32, the
        trained model itself), "torch-int8" (torchao dynamic int8), "onnx" or
        "onnx-int8" (ONNX Runtime). Built from the trained weights on first use;
        training always runs "torch".
    n_threads (Optional[int]): CPU threads for the forward pass (sets torch's
        and ONNX Runtime's); None keeps torch's setting.
    """
    return SubwordNER(
        nlp.vocab, model, name, aggregation=aggregation, label_projection=label_projection,
        overwrite_ents=overwrite_ents, spans_key=spans_key, store_trf_data=store_trf_data,
        entity_bias=entity_bias, decoder=decoder, engine=engine, n_threads=n_threads, scorer=scorer,
    )


@dataclass
class TaggedBatch:
    """Decoded predictions for a batch: entity spans over the concatenated docs."""

    doc_lengths: numpy.ndarray
    entities: EntitySpans
    trf_batch: object = None


class SubwordNER(TrainablePipe):
    """Named entities from a transformer that predicts on subwords.

    Subword scores are aggregated onto spaCy tokens by character-offset
    alignment, decoded into valid BIO with constrained Viterbi and written
    as `doc.ents`.
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
        decoder: str = "viterbi",
        engine: str = "torch",
        n_threads: Optional[int] = None,
        scorer: Optional[Callable] = get_ner_prf,
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"[{name}] aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if label_projection not in PROJECTIONS:
            raise ValueError(
                f"[{name}] label_projection must be one of {PROJECTIONS}, got {label_projection!r}"
            )
        if decoder not in DECODERS:
            raise ValueError(f"[{name}] decoder must be one of {DECODERS}, got {decoder!r}")
        check_engine(engine)
        if engine != "torch" and store_trf_data:
            raise ValueError(f"[{name}] store_trf_data needs engine 'torch', got engine {engine!r}")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"[{name}] n_threads must be a positive number or null, got {n_threads!r}")
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
        self.decoder = decoder
        self.engine = engine
        self.n_threads = n_threads
        if n_threads is not None:
            import torch

            torch.set_num_threads(n_threads)
        self._engine = EngineSlot()
        self._onnx_bytes: Optional[bytes] = None
        self.alignment_stats: Counter = Counter()
        if store_trf_data:
            from spacy_transformers.pipeline_component import install_extensions

            install_extensions()

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
        """Add an entity label before initialization; 0 if it was there already."""
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
        """Read labels from the examples (or take `labels`) and load the transformer.

        checkpoint_head: the transformer is a HF token-classification checkpoint:
            take its labels (`id2label`) and its classifier weights, so the
            component predicts as the checkpoint does without training.
        checkpoint_scheme: the checkpoint's tag scheme, one of `SCHEMES`;
            "auto" tells IOB2, BIOES, BILOU and plain labels apart (IOB1 must be named).
        """
        validate_get_examples(get_examples, "SubwordNER.initialize")
        util.check_lexeme_norms(self.vocab, "wnut_ner")
        if checkpoint_head:
            from .hf_checkpoint import read_head_scheme

            if labels is not None:
                raise ValueError(f"[{self.name}] give either `labels` or `checkpoint_head`, not both")
            head = read_head_scheme(self.checkpoint_name, checkpoint_scheme)
            self.cfg.update(labels=list(head.labels), head_tags=list(head.tags), head_scheme=head.kind)
        elif labels is not None:
            for label in labels:
                self.add_label(label)
        else:
            for example in get_examples():
                for ent in example.reference.ents:
                    self.add_label(ent.label_)
        self._require_labels()
        doc_sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.set_dim("nO", len(self.head.tags), force=True)
        self.model.initialize(X=doc_sample)
        if checkpoint_head:
            from .hf_checkpoint import load_classifier

            load_classifier(self.model, self.checkpoint_name)

    @property
    def checkpoint_name(self) -> str:
        """The transformer's HF name or directory, as configured."""
        return self.model.get_ref("transformer").attrs["name"]

    def predict(self, docs: Iterable[Doc]) -> TaggedBatch:
        """Decode entities for a batch of docs; does not touch the docs."""
        docs = list(docs)
        lengths = numpy.array([len(doc) for doc in docs], dtype="i")
        if not lengths.sum():
            empty = numpy.zeros((0,), dtype="i")
            return TaggedBatch(lengths, EntitySpans(empty, empty, empty, empty.astype("f")))
        _guard_forked_torch()
        if self.engine == "torch":
            import torch

            with torch.inference_mode():
                output = self.model.predict(docs)
        else:
            output = engine_scores(self.model, self._built_engine(), docs)
        return self.decode(output)

    def _built_engine(self):
        if self._engine.engine is None:
            if self.engine in ONNX_ENGINES and self._onnx_bytes is None:
                self._onnx_bytes = export_onnx(self.model, quantize=self.engine == "onnx-int8")
            self._engine.engine = build_engine(self.engine, self.model, self.n_threads, self._onnx_bytes)
        return self._engine.engine

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Tag a stream of docs in batches of similar length; docs come out in input order.

        Docs are read in buffers of `PIPE_BUFFER_BATCHES` batches and sorted by
        subword count, so that windows padded together are of similar length.
        """
        error_handler = self.get_error_handler()
        for buffer in util.minibatch(stream, size=batch_size * PIPE_BUFFER_BATCHES):
            lengths = self._subword_counts(buffer) if batch_size > 1 else [0] * len(buffer)
            order = sorted(range(len(buffer)), key=lengths.__getitem__)
            for start in range(0, len(order), batch_size):
                batch = [buffer[i] for i in order[start : start + batch_size]]
                try:
                    self.set_annotations(batch, self.predict(batch))
                except Exception as e:
                    error_handler(self.name, self, batch, e)
            yield from buffer

    def _subword_counts(self, docs: List[Doc]) -> List[int]:
        """Subwords per doc by the transformer's fast tokenizer (text length before it is loaded)."""
        tokenizer = self.model.get_ref("transformer").tokenizer
        if tokenizer is None:
            return [len(doc.text) for doc in docs]
        encoded = tokenizer([doc.text for doc in docs], add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def finish_update(self, sgd: Optimizer) -> None:
        """Update the weights; an inference engine built from the old ones is dropped."""
        super().finish_update(sgd)
        self._drop_engine()

    def use_params(self, params: Dict) -> Iterator[None]:
        """Use `params` (e.g. `optimizer.averages`) while the caller's block runs.

        Unlike `Model.use_params`, this also swaps the transformer's weights, so
        `Adam.v1(use_averages=true)` evaluates and saves the averaged encoder.
        A generator, as `Language.use_params` expects of a pipe.
        """
        with swapped_params(self.model, params) as n_swapped:
            if n_swapped:
                self._drop_engine()
            try:
                yield
            finally:
                if n_swapped:
                    self._drop_engine()

    def _drop_engine(self) -> None:
        """Forget an engine (and ONNX graph) built from weights that have changed."""
        self._engine.engine = None
        self._onnx_bytes = None

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save as any spaCy pipe; an ONNX engine's graph is saved beside the weights."""
        super().to_disk(path, exclude=exclude)
        if self.engine in ONNX_ENGINES and self.is_initialized():
            self._built_engine()
            (Path(path) / f"{self.engine}.onnx").write_bytes(self._onnx_bytes)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "SubwordNER":
        """Load as any spaCy pipe; reuse a saved ONNX graph for the configured engine."""
        super().from_disk(path, exclude=exclude)
        self._engine.engine = None
        saved = Path(path) / f"{self.engine}.onnx"
        self._onnx_bytes = saved.read_bytes() if self.engine in ONNX_ENGINES and saved.exists() else None
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "SubwordNER":
        """Load weights and cfg; any engine is rebuilt from them on first use."""
        super().from_bytes(bytes_data, exclude=exclude)
        self._engine.engine = None
        self._onnx_bytes = None
        return self

    def is_initialized(self) -> bool:
        """Whether the head has weights (after `initialize` or loading)."""
        return self.model.get_ref("output_layer").has_param("W")

    def token_probs(self, output: SubwordScores) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """Per-token IOB2 tag probabilities (aggregated subword softmax) and which tokens had subwords."""
        probs = _softmax(self.model.ops.to_numpy(output.scores))
        pairs = TokenRows.from_ragged(output.align)
        token_probs, has_rows = aggregate(probs, pairs, self.aggregation, output.window_length)
        head = self.head
        if not head.is_bio():
            token_probs = token_probs @ head.to_bio()
        return token_probs, has_rows

    def decode(self, output: SubwordScores) -> TaggedBatch:
        """Subword scores -> token probabilities -> constrained Viterbi -> entity spans."""
        token_probs, has_rows = self.token_probs(output)
        self.alignment_stats["tokens_without_subwords"] += int((~has_rows).sum())
        entities = self.decode_probs(token_probs, has_rows, output.doc_lengths, self.entity_bias)
        trf_batch = output.trf_batch if self.store_trf_data else None
        return TaggedBatch(output.doc_lengths, entities, trf_batch)

    def decode_probs(
        self, token_probs: numpy.ndarray, has_rows: numpy.ndarray, doc_lengths: numpy.ndarray,
        entity_bias: float,
    ) -> EntitySpans:
        """Token probabilities -> tags (entity tags biased by `entity_bias`) -> spans.

        Tags come from constrained Viterbi, or per token with `decoder="argmax"`.
        """
        scheme = self.scheme
        log_probs = numpy.log(numpy.maximum(token_probs, 1e-12))
        log_probs[:, 1:] += entity_bias
        log_probs[~has_rows] = _no_rows_prior(scheme)
        if self.decoder == "argmax":
            tags = log_probs.argmax(axis=1).astype("i")
        else:
            tags = viterbi(log_probs, doc_lengths, scheme.allowed_transitions())
        token_scores = numpy.take_along_axis(token_probs, tags[:, None], axis=1)[:, 0]
        return tags_to_spans(tags, token_scores, doc_lengths)

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
                Span(doc, int(s - base), int(e - base), label=labels[l])
                for s, e, l in zip(ents.starts[lo:hi], ents.ends[lo:hi], ents.label_ids[lo:hi])
            ]
            doc.set_ents(self._merge_ents(doc, spans), default="outside")
            if key is not None:
                doc.spans[key] = SpanGroup(doc, name=key, spans=spans, attrs={"scores": ents.scores[lo:hi].copy()})
        if batch.trf_batch is not None:
            for doc, data in zip(docs, batch.trf_batch.doc_data):
                doc._.trf_data = data

    def _merge_ents(self, doc: Doc, spans: List[Span]) -> List[Span]:
        if self.overwrite_ents or not doc.ents:
            return spans
        taken = numpy.zeros(len(doc), dtype=bool)
        for ent in doc.ents:
            taken[ent.start : ent.end] = True
        return list(doc.ents) + [span for span in spans if not taken[span.start : span.end].any()]

    def get_loss(self, examples: Iterable[Example], output: SubwordScores) -> Tuple[float, Floats2d]:
        """Softmax cross-entropy on subwords, gold projected from `get_aligned_ner()`.

        Tokens whose gold is unknown (`None`: misaligned tokenization, or
        missing annotation) give no training signal.
        """
        validate_examples(examples, "SubwordNER.get_loss")
        head = self.head
        token_gold = numpy.concatenate(
            [head.encode(eg.get_aligned_ner()) for eg in examples] or [numpy.zeros((0,), "i")]
        )
        pairs = TokenRows.from_ragged(output.align)
        scores = self.model.ops.to_numpy(output.scores)
        self._count_gold_alignment(token_gold, pairs)
        row_gold = project_gold(
            token_gold, pairs, self.label_projection, scores.shape[0], output.window_length
        )
        rows = numpy.flatnonzero(row_gold >= 0)
        probs = _softmax(scores)
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

    def _count_gold_alignment(self, token_gold: numpy.ndarray, pairs: TokenRows) -> None:
        has_rows = pairs.has_rows()
        self.alignment_stats["gold_tokens_unknown"] += int((token_gold < 0).sum())
        self.alignment_stats["gold_entity_tokens_without_subwords"] += int(
            ((token_gold > 0) & ~has_rows).sum()
        )

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples: one forward/backward pass, then `sgd` if given."""
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
_TORCH_PID = os.getpid()


def _guard_forked_torch() -> None:
    """In a forked worker (`nlp.pipe(n_process=N)` on Linux), use one torch thread.

    The parent's OpenMP pool does not survive `fork`: the first parallel op
    in the child would hang. One thread per worker is also the right split
    of the cores between N workers.
    """
    global _TORCH_PID
    if os.getpid() != _TORCH_PID:
        import torch

        torch.set_num_threads(1)
        _TORCH_PID = os.getpid()


def _softmax(scores: numpy.ndarray) -> numpy.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = numpy.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _no_rows_prior(scheme: TagScheme) -> numpy.ndarray:
    return numpy.array([_NO_ROWS_LOG_PROB[tag[0]] for tag in scheme.tags], dtype="f")
