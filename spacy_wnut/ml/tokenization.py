"""The encoder's tokenizer as encoding needs it: subword ids and character offsets of texts.

Training gets it from the Hugging Face tokenizer that spacy-transformers
loads (`SubwordTokenizer.from_hf`); a run-time pipeline from the fast
tokenizer's JSON and a few settings saved beside the ONNX graph
(`SubwordTokenizer.from_json`). Both call the same `tokenizers.Tokenizer`
(the Rust backend under every HF fast tokenizer), so both see the same
subwords. Slow (Python-only) HF tokenizers work in training only.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

# `model_max_length` of tokenizers that set none (HF's VERY_LARGE_INTEGER and the like).
NO_LIMIT = 1_000_000


@dataclass
class SubwordTokenizer:
    """Subword tokenisation of texts for one encoder.

    backend (Optional[tokenizers.Tokenizer]): the fast tokenizer; None for a slow one.
    max_length (int): the most subwords (special tokens included) one window may hold.
    pad_id (int): the id padding rows get.
    truncation_side (str): which end a too long single token loses ("right" or "left").
    token_type_ids (bool): whether the encoder takes token type ids.
    slow (Any): a slow HF tokenizer (training only), used when `backend` is None.
    """

    backend: Any
    max_length: int
    pad_id: int = 0
    truncation_side: str = "right"
    token_type_ids: bool = False
    slow: Any = None

    @classmethod
    def from_hf(cls, tokenizer: Any, max_length: int) -> "SubwordTokenizer":
        """The tokenizer of a HF `PreTrainedTokenizer(Fast)`."""
        return cls(
            backend=tokenizer.backend_tokenizer if tokenizer.is_fast else None,
            max_length=max_length,
            pad_id=tokenizer.pad_token_id or 0,
            truncation_side=getattr(tokenizer, "truncation_side", "right"),
            token_type_ids="token_type_ids" in tokenizer.model_input_names,
            slow=None if tokenizer.is_fast else tokenizer,
        )

    @classmethod
    def from_json(cls, tokenizer_json: str, settings: Dict[str, Any]) -> "SubwordTokenizer":
        """A fast tokenizer from its JSON (`tokenizer.json`) and `settings()`."""
        from tokenizers import Tokenizer

        return cls(backend=Tokenizer.from_str(tokenizer_json), **settings)

    @property
    def is_fast(self) -> bool:
        return self.backend is not None

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
        if not self.is_fast:
            raise ValueError("a slow tokenizer has no JSON form")
        return self.backend.to_str()

    def encode(
        self, texts: List[str], max_length: Optional[int] = None, add_special_tokens: bool = True
    ) -> Dict[str, List]:
        """Subword ids (and, from fast tokenizers, character offsets) of each text, unpadded.

        The backend is called directly, as the HF tokenizer's own `__call__`
        does, without building a `BatchEncoding` per call (which costs as much
        as the tokenisation itself for one short text).
        """
        if self.is_fast:
            self.backend.no_padding()
            if max_length is None:
                self.backend.no_truncation()
            else:
                self.backend.enable_truncation(max_length, direction=self.truncation_side)
            encodings = self.backend.encode_batch(texts, add_special_tokens=add_special_tokens)
            return {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}
        return self.slow(
            texts,
            add_special_tokens=add_special_tokens,
            return_attention_mask=False,
            return_token_type_ids=False,
            truncation=max_length is not None,
            max_length=max_length,
            verbose=False,
        )

    def count(self, texts: List[str], special_tokens: bool = False) -> List[int]:
        """Subwords per text (for batching and length sorting)."""
        return [len(ids) for ids in self.encode(texts, add_special_tokens=special_tokens)["input_ids"]]

    def num_special_tokens(self) -> int:
        """Special tokens added around one sequence."""
        if self.is_fast:
            return self.backend.num_special_tokens_to_add(False)
        return self.slow.num_special_tokens_to_add(pair=False)
