"""Shared fixtures: the WNUT 17 mirror (skipped with a reason where absent), tiny transformers, small files,
and the markers' rules (`pyproject.toml` declares them): a `network` test skips, with the reason, where
pip's package index cannot be reached. Helpers that tests call directly live in `util.py`.
"""

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import pytest

from .util import TINY_WORDS, make_nlp, overfit


@functools.lru_cache(maxsize=1)
def package_index_problem() -> Optional[str]:
    """Why pip cannot reach its package index (None where it can): asked once per session, as pip asks."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", "setuptools", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return "pip's package index did not answer within 120 s"
    if done.returncode != 0:
        return f"pip's package index cannot be reached: {(done.stderr or done.stdout).strip()[-200:]}"
    return None


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("network") is not None:
        problem = package_index_problem()
        if problem is not None:
            pytest.skip(f"needs the package index ({problem})")


# The official files, committed in assets/ (CC BY 4.0); WNUT17_MIRROR points elsewhere.
MIRROR = Path(os.environ.get("WNUT17_MIRROR", Path(__file__).parents[1] / "assets"))


@pytest.fixture(scope="session")
def wnut_mirror() -> Path:
    """The local copy of the official WNUT 17 files."""
    if not (MIRROR / "wnut17train.conll").exists():
        pytest.skip(f"WNUT 17 mirror not found at {MIRROR} (set WNUT17_MIRROR to its directory)")
    return MIRROR


@pytest.fixture
def write_conll(tmp_path):
    """Write bytes or text to a CoNLL file in a temporary directory and return its path."""

    def write(content, name: str = "data.conll") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    return write


def write_wordpiece_vocab(path: Path, specials) -> list:
    """The tiny fixtures' WordPiece vocab (SPECIALS first, then characters, ##characters, TINY_WORDS) as vocab.txt."""
    import string

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = list(specials) + chars + [f"##{c}" for c in chars] + TINY_WORDS
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def wordpiece_tokenizer(tokenizer_class, vocab: list, specials: dict, cls: str, sep: str, **kwargs):
    """A fast WordPiece tokenizer of exactly `vocab`, built from a `tokenizers.Tokenizer`.

    `BertTokenizerFast(vocab_file=...)` silently builds a 5-token vocabulary under
    transformers 5 (every word `[UNK]`), so the pieces are given explicitly, and
    the result is checked: its size, and a known word that must not be unknown.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = {piece: i for i, piece in enumerate(vocab)}
    backend = Tokenizer(models.WordPiece(ids, unk_token=specials["unk_token"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = tokenizer_class(tokenizer_object=backend, **specials, **kwargs)
    assert len(tokenizer.get_vocab()) == len(vocab), "the fixture's tokenizer lost pieces of its vocab"
    known = tokenizer("york", add_special_tokens=False)["input_ids"]
    assert known == [ids["york"]], f"'york' is not one known piece: {known}"
    return tokenizer


BERT_TOKENS = {
    "unk_token": "[UNK]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT with a real WordPiece vocab, saved as a HF directory."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = write_wordpiece_vocab(path, BERT_SPECIALS)
    wordpiece_tokenizer(BertTokenizerFast, vocab, BERT_TOKENS, "[CLS]", "[SEP]", model_max_length=512).save_pretrained(
        path
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_transformer):
    """The tiny transformer's fast tokenizer as encoding uses it (`SubwordTokenizer`)."""
    from transformers import AutoTokenizer

    from spacy_wnut.ml.tokenization import SubwordTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_transformer)
    assert tokenizer.convert_tokens_to_ids("york") != tokenizer.unk_token_id
    return SubwordTokenizer.from_hf(tokenizer, 512)


@pytest.fixture(scope="session")
def trained_nlp(tiny_transformer):
    """A tiny pipeline overfitted on TRAIN_DATA (shared, read-only: do not update it)."""
    nlp = make_nlp(tiny_transformer)
    overfit(nlp)
    return nlp


@pytest.fixture(scope="session")
def model_dir(trained_nlp, tmp_path_factory) -> Path:
    """`trained_nlp` saved to a directory (shared, read-only), for commands that load a pipeline."""
    path = tmp_path_factory.mktemp("model")
    trained_nlp.to_disk(path)
    return path


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    """A tiny randomly initialised DistilBERT (the default backbone's architecture: no token type ids,
    its own embedding module names, `DistilBertTokenizerFast`) with the same WordPiece vocab."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-distilbert")
    vocab = write_wordpiece_vocab(path, BERT_SPECIALS)
    wordpiece_tokenizer(
        DistilBertTokenizerFast, vocab, BERT_TOKENS, "[CLS]", "[SEP]", model_max_length=512
    ).save_pretrained(path)
    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=len(vocab), dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=512
    )
    DistilBertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory) -> Path:
    """A tiny randomly initialised MPNet (all-mpnet-base-v2's architecture: no token type ids, positions
    counted from the padding index + 1, relative attention, `<s>`/`</s>`/`<pad>` specials at the ids
    of the real vocab, `MPNetTokenizerFast`) with the same WordPiece pieces as the BERT fixtures."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    path = tmp_path_factory.mktemp("tiny-mpnet")
    vocab = write_wordpiece_vocab(path, ("<s>", "<pad>", "</s>", "[UNK]", "<mask>"))
    mpnet_tokens = {"unk_token": "[UNK]", "pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
    mpnet_tokens.update(cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    wordpiece_tokenizer(MPNetTokenizerFast, vocab, mpnet_tokens, "<s>", "</s>", model_max_length=512).save_pretrained(
        path
    )
    torch.manual_seed(0)
    config = MPNetConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    MPNetModel(config).save_pretrained(path)
    return path


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    """A folder nothing can be created in, even by root: a read-only tmpfs mounted there (as root), or a
    folder of mode 0o555 (as any other user)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "ro,size=1m"):
        yield folder


@pytest.fixture
def other_file_system(tmp_path) -> Iterator[Path]:
    """An empty folder on another file system than `tmp_path` (a rename across them fails with EXDEV)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(tmp_path).st_dev:
        folder = Path(tempfile.mkdtemp(dir=shm))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
        return
    folder = tmp_path / "other-fs"
    folder.mkdir()
    with mounted_tmpfs(folder, "size=8m"):
        yield folder


@contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[None]:
    """A tmpfs mounted on `folder` for the block; the test is skipped where mounting is not allowed."""
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("needs a tmpfs mount, and this machine has no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"needs a tmpfs mount, which is not allowed here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)
