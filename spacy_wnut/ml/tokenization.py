"""The encoder's tokenizer as encoding needs it: subword ids and character offsets of texts.

Training gets it from the Hugging Face tokenizer the encoder layer loads
(`SubwordTokenizer.from_hf`); a run-time pipeline from the fast tokenizer's
JSON and a few settings saved beside the ONNX graph
(`SubwordTokenizer.from_json`). Both call the same `tokenizers.Tokenizer`
(the Rust backend under every HF fast tokenizer), so both see the same
subwords. Slow (Python-only) tokenizers are refused: transformers 5 has none,
and their subwords have no character offsets to align by.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

# `model_max_length` of tokenizers that set none (HF's VERY_LARGE_INTEGER and the like).
NO_LIMIT = 1_000_000


@dataclass
class SubwordTokenizer:
    """Subword tokenisation of texts for one encoder.

    backend (tokenizers.Tokenizer): the fast tokenizer.
    max_length (int): the most subwords (special tokens included) one window may hold.
    pad_id (int): the id padding rows get.
    truncation_side (str): which end a too long single token loses ("right" or "left").
    token_type_ids (bool): whether the encoder takes token type ids.
    """

    backend: Any
    max_length: int
    pad_id: int = 0
    truncation_side: str = "right"
    token_type_ids: bool = False

    @classmethod
    def from_hf(cls, tokenizer: Any, max_length: int) -> "SubwordTokenizer":
        """The tokenizer of a HF fast tokenizer (a slow one is refused: it has no offsets to align by)."""
        if not getattr(tokenizer, "is_fast", False):
            from ..errors import ConfigError

            raise ConfigError(
                f"{type(tokenizer).__name__} is a slow (Python) tokenizer; spacy-wnut needs a fast one "
                "(a `tokenizer.json`, as every tokenizer of transformers 5 has)"
            )
        return cls(
            backend=tokenizer.backend_tokenizer,
            max_length=max_length,
            pad_id=tokenizer.pad_token_id or 0,
            truncation_side=getattr(tokenizer, "truncation_side", "right"),
            token_type_ids="token_type_ids" in tokenizer.model_input_names,
        )

    @classmethod
    def from_json(cls, tokenizer_json: str, settings: Dict[str, Any]) -> "SubwordTokenizer":
        """A fast tokenizer from its JSON (`tokenizer.json`) and `settings()`."""
        from tokenizers import Tokenizer

        return cls(backend=Tokenizer.from_str(tokenizer_json), **settings)

    def settings(self) -> Dict[str, Any]:
        """What `from_json` needs beside the JSON."""
        return {
            "max_length": self.max_length,
            "pad_id": self.pad_id,
            "truncation_side": self.truncation_side,
            "token_type_ids": self.token_type_ids,
        }

    def to_json(self) -> str:
        """The fast tokenizer's JSON (`tokenizer.json`)."""
        return self.backend.to_str()

    def encode(
        self, texts: List[str], max_length: Optional[int] = None, add_special_tokens: bool = True
    ) -> Dict[str, List]:
        """Subword ids (and, from fast tokenizers, character offsets) of each text, unpadded.

        The backend is called directly, as the HF tokenizer's own `__call__`
        does, without building a `BatchEncoding` per call (which costs as much
        as the tokenisation itself for one short text).
        """
        self.backend.no_padding()
        if max_length is None:
            self.backend.no_truncation()
        else:
            self.backend.enable_truncation(max_length, direction=self.truncation_side)
        encodings = self.backend.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}

    def count(self, texts: List[str], special_tokens: bool = False) -> List[int]:
        """Subwords per text (for batching and length sorting)."""
        return [len(ids) for ids in self.encode(texts, add_special_tokens=special_tokens)["input_ids"]]

    def num_special_tokens(self) -> int:
        """Special tokens added around one sequence."""
        return self.backend.num_special_tokens_to_add(False)
