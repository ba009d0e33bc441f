"""`spacy_wnut.HFEncoder.v1`: a Hugging Face encoder (`transformers.AutoModel`) as a trainable Thinc layer.

It takes the `EncodedBatch` that `encoding.encode_docs` makes (the same
windows, tokenizer and alignment every engine and the run-time pipeline use)
and returns the encoder's last hidden state as rows `(n_windows *
window_length, width)`. PyTorch runs inside Thinc's `PyTorchShim` (mixed
precision and a gradient scaler where a GPU is used).

Serialisation holds no pickle: the encoder's exact `config.json` (stdlib JSON
keeps every float as written), its weights as safetensors and the tokenizer's
own files (`tokenizer.json`, `tokenizer_config.json`). Pipelines saved by
spacy-wnut 0.3 and earlier (spacy-transformers' `TransformerModel.v3`, whose
names `legacy.py` registers) are read too, with `torch.load(weights_only=True)`.
"""

import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

import srsly
from spacy.tokens import Doc, Span
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchGradScaler, PyTorchShim, get_torch_default_device
from thinc.types import Floats2d

from ..errors import TRAIN_PACKAGES, ConfigError, InputError, require
from . import windows  # noqa: F401  (creates the span_getters registry the config's get_spans needs)
from .backbones import resolve_backbone
from .encoding import EncodedBatch, max_subwords_of
from .tokenization import SubwordTokenizer

if TYPE_CHECKING:
    import torch

SpanGetter = Callable[[List[Doc]], List[List[Span]]]
# What `to_bytes` writes; `from_bytes` refuses anything else by name.
FORMAT = "spacy_wnut.hf_encoder.v1"
CONFIG_FILE = "config.json"


@registry.architectures("spacy_wnut.HFEncoder.v1")
def build_hf_encoder(
    name: str,
    get_spans: SpanGetter,
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},  # noqa: B006 (confection writes the default into configs; never mutated)
    transformer_config: dict = {},  # noqa: B006 (confection writes the default into configs; never mutated)
) -> Model[EncodedBatch, Floats2d]:
    """A Hugging Face encoder, loaded from `name` at `initialize`, as a Thinc layer.

    name (str): a hub name, a local directory, or an offline backbone name (`backbones.py`).
    get_spans (Callable): docs -> the windows of each doc (e.g. `spacy_wnut.strided_spans.v1`).
    mixed_precision (bool): autocast the forward pass to half precision (GPU only).
    grad_scaler_config (dict): `PyTorchGradScaler` settings (on by default with mixed precision).
    transformer_config (dict): settings for the encoder's `AutoConfig` (e.g. `{"hidden_dropout_prob": 0.2}`).
    RETURNS (Model[EncodedBatch, Floats2d]): the encoder's rows of an encoded batch.
    """
    require("the encoder layer spacy_wnut.HFEncoder.v1 (a trainable pipeline)", TRAIN_PACKAGES, "train")
    scaler = dict(grad_scaler_config)
    scaler.setdefault("enabled", mixed_precision)
    shim = HFShim(mixed_precision=mixed_precision, grad_scaler=PyTorchGradScaler(**scaler))
    torch_layer = Model("hf_torch", _torch_forward, shims=[shim])
    return Model(
        "hf_encoder",
        _forward,
        init=_init,
        layers=[torch_layer],
        dims={"nO": None},
        attrs={"name": name, "get_spans": get_spans, "transformer_config": dict(transformer_config)},
    )


def is_hf_encoder(layer: Model) -> bool:
    """Whether `layer` is an `HFEncoder` (and not, say, spacy-transformers' `TransformerModel`)."""
    return len(layer.layers) == 1 and any(isinstance(shim, HFShim) for shim in layer.layers[0].shims)


def check_encoder(layer: Model) -> None:
    """Refuse an encoder layer that spacy-wnut cannot drive, saying what to configure instead."""
    if not is_hf_encoder(layer):
        raise ConfigError(
            f"the tagger's transformer is {layer.name!r} (spacy-transformers?); spacy-wnut 0.4 runs its own encoder: "
            'set [components.<name>.model.transformer] @architectures = "spacy_wnut.HFEncoder.v1", or convert a saved '
            "pipeline with `spacy wnut migrate OLD NEW` in an environment without spacy-transformers"
        )


def encoder_shim(encoder: Model) -> "HFShim":
    """The shim holding the PyTorch model and the tokenizer of an `HFEncoder` layer."""
    return encoder.layers[0].shims[0]


def encoder_model(encoder: Model) -> Optional["torch.nn.Module"]:
    """The encoder's `transformers` model (None before `initialize` or loading)."""
    return encoder_shim(encoder)._model


def encoder_tokenizer(encoder: Model):
    """The encoder's `transformers` tokenizer (fast), for export and inspection (None before loading)."""
    return encoder_shim(encoder).hf_tokenizer


def max_subwords(encoder: Model) -> int:
    """The most subwords one window may hold for a loaded encoder (`encoding.max_subwords_of`)."""
    return max_subwords_of(encoder_tokenizer(encoder), encoder_model(encoder).config)


def subword_tokenizer(encoder: Model) -> Optional[SubwordTokenizer]:
    """The tokenizer that `encode_docs` runs for this encoder (None before loading)."""
    return encoder_shim(encoder).subwords


def _init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    shim = encoder_shim(model)
    if shim._model is None:
        shim.load_pretrained(resolve_backbone(model.attrs["name"]), model.attrs["transformer_config"])
    model.set_dim("nO", shim.width, force=True)


def _forward(model: Model, encoded: EncodedBatch, is_train: bool) -> Tuple[Floats2d, Callable]:
    if encoder_shim(model)._model is None:
        raise ConfigError(f"the encoder {model.attrs['name']!r} is not loaded: initialize the pipeline first")
    if not model.has_dim("nO"):
        model.set_dim("nO", encoder_shim(model).width, force=True)
    return model.layers[0](encoded, is_train)


def _torch_forward(model: Model, encoded: EncodedBatch, is_train: bool) -> Tuple[Floats2d, Callable]:
    from thinc.api import torch2xp, xp2torch

    shim: HFShim = model.shims[0]
    inputs = ArgsKwargs(args=(), kwargs=encoded.torch_inputs(shim.device))
    output, torch_backprop = shim(inputs, is_train)
    hidden = output.last_hidden_state
    n_windows, window_length, width = hidden.shape
    rows = torch2xp(hidden.detach().float()).reshape(-1, width)

    def backprop(d_rows: Floats2d) -> EncodedBatch:
        d_hidden = xp2torch(d_rows.reshape(n_windows, window_length, width), device=hidden.device)
        torch_backprop(ArgsKwargs(args=(hidden,), kwargs={"grad_tensors": (d_hidden.to(hidden.dtype),)}))
        return encoded

    return rows, backprop


class HFShim(PyTorchShim):
    """A `transformers` model and its fast tokenizer inside Thinc, serialised without pickle.

    Before `load_pretrained` or `from_bytes` the shim holds no model.
    """

    def __init__(self, mixed_precision: bool = False, grad_scaler: Optional[PyTorchGradScaler] = None) -> None:
        super().__init__(None, mixed_precision=mixed_precision, grad_scaler=grad_scaler)
        self.config_json: Optional[str] = None
        self.tokenizer_files: Dict[str, bytes] = {}
        self.hf_tokenizer = None
        self.subwords: Optional[SubwordTokenizer] = None

    @property
    def width(self) -> int:
        """The encoder's hidden size."""
        return int(self._model.config.hidden_size)

    def load_pretrained(self, path: str, transformer_config: Optional[Dict[str, Any]] = None) -> None:
        """Load encoder and tokenizer from a hub name or directory (in float32)."""
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            check_vocabulary(tokenizer, path)
            config = AutoConfig.from_pretrained(path, **(transformer_config or {}))
            model = AutoModel.from_pretrained(path, config=config, dtype=torch.float32)
        except (OSError, ValueError) as err:
            raise InputError(path, f"cannot load the encoder ({type(err).__name__}: {err})") from None
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer.save_pretrained(tmp)
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        self._set(model, model.config.to_json_string(use_diff=False), files, tokenizer)

    def _set(self, model, config_json: str, tokenizer_files: Dict[str, bytes], tokenizer) -> None:
        model.to(get_torch_default_device())
        self._model = model
        self.config_json = config_json
        self.tokenizer_files = tokenizer_files
        self.hf_tokenizer = tokenizer
        self.subwords = SubwordTokenizer.from_hf(tokenizer, max_subwords_of(tokenizer, model.config))

    def to_bytes(self) -> bytes:
        """The exact `config.json`, safetensors weights and the tokenizer's files, as msgpack."""
        if self._model is None:
            return srsly.msgpack_dumps({"format": FORMAT, "config": None})
        msg = {
            "format": FORMAT,
            "config": self.config_json,
            "weights": state_to_safetensors(self._model),
            "tokenizer": self.tokenizer_files,
        }
        return srsly.msgpack_dumps(msg)

    def from_bytes(self, bytes_data: bytes) -> "HFShim":
        """Read what `to_bytes` wrote (or, through `legacy.py`, what spacy-transformers wrote)."""
        msg = srsly.msgpack_loads(bytes_data)
        if msg.get("format") != FORMAT:
            return self._read_spacy_transformers(msg)
        if msg["config"] is None:
            return self
        self.load_parts(msg["config"], msg["weights"], msg["tokenizer"])
        return self

    def _read_spacy_transformers(self, msg: Dict[str, Any]) -> "HFShim":
        """Load what spacy-transformers' `HFShim.to_bytes` wrote (0.2/0.3 pipelines; weights read without pickle)."""
        import torch

        if not isinstance(msg, dict) or "state" not in msg or "tokenizer" not in msg:
            raise InputError("the saved encoder", "neither spacy-wnut's format nor spacy-transformers' (unknown keys)")
        if not msg.get("config"):
            return self
        try:
            state = torch.load(io.BytesIO(msg["state"]), map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises UnpicklingError, RuntimeError or ValueError by version
            raise InputError(
                "the saved encoder",
                f"its spacy-transformers weights cannot be read safely ({type(err).__name__}: {err})",
            ) from None
        files = {name: data for name, data in msg["tokenizer"].items() if name != "kwargs"}
        # msgpack kept every float of the config exactly; stdlib JSON writes them back exactly.
        self.load_parts(json.dumps(msg["config"], indent=2, sort_keys=True), state, files)
        return self

    def load_parts(self, config_json: str, weights: Union[bytes, Dict[str, "torch.Tensor"]], files: Dict[str, bytes]):
        """Build the encoder from its config's JSON, its weights (safetensors bytes or tensors) and tokenizer files."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / Path(name).name).write_bytes(data)
            (Path(tmp) / CONFIG_FILE).write_text(config_json, encoding="utf-8")
            config = AutoConfig.from_pretrained(tmp)
            tokenizer = AutoTokenizer.from_pretrained(tmp)
        model = AutoModel.from_config(config)
        load_state(model, weights)
        self._set(model.eval(), config_json, dict(files), tokenizer)

    def copy(self) -> "HFShim":
        copied = HFShim(self._mixed_precision, PyTorchGradScaler(enabled=self._grad_scaler.enabled))
        if self._model is not None:
            copied.from_bytes(self.to_bytes())
        return copied


def check_vocabulary(tokenizer: Any, source: str) -> None:
    """Refuse a tokenizer whose vocabulary is only its special tokens.

    transformers 5 builds such a tokenizer, without a word, from a directory
    that lacks its tokenizer files: every word would be `[UNK]`.
    """
    vocab = len(tokenizer.get_vocab())
    if vocab <= len(set(tokenizer.all_special_tokens)):
        raise InputError(
            str(source),
            f"its tokenizer cannot be loaded: a vocabulary of {vocab} special token(s) and no word (the tokenizer "
            "files, e.g. tokenizer.json, are missing); save them with the model (`tokenizer.save_pretrained(...)`)",
        )


def state_to_safetensors(module: "torch.nn.Module") -> bytes:
    """The module's weights as safetensors bytes; a tied weight is stored once (its twin comes back on load)."""
    from safetensors.torch import save

    kept: Dict[str, "torch.Tensor"] = {}
    seen = set()
    for name, tensor in module.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype) if tensor.numel() else None
        if key is not None and key in seen:
            continue
        seen.add(key)
        kept[name] = tensor.detach().cpu().contiguous()
    return save(kept, metadata={"format": "pt"})


def load_state(module: "torch.nn.Module", weights) -> None:
    """Load safetensors bytes (or a state dict) into `module`; any weight left out must be a tied twin."""
    from safetensors.torch import load

    state = load(weights) if isinstance(weights, (bytes, bytearray)) else weights
    missing, unexpected = module.load_state_dict(state, strict=False)
    aliases = _tied_names(module)
    missing = [name for name in missing if not (aliases.get(name, set()) & set(state))]
    if missing or unexpected:
        raise InputError(
            "the saved encoder",
            f"its weights do not fit {type(module).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}",
        )


def _tied_names(module: "torch.nn.Module") -> Dict[str, set]:
    """name -> the other names sharing its storage (tied weights)."""
    groups: Dict[Tuple, set] = {}
    for name, tensor in module.state_dict().items():
        if tensor.numel():
            groups.setdefault((tensor.data_ptr(), tuple(tensor.shape)), set()).add(name)
    return {name: group - {name} for group in groups.values() for name in group}
