"""Optimizer mechanics of the tagger: per-layer learning-rate scales and parameter averages that reach the encoder."""

from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List

from thinc.api import Model, PyTorchShim, xp2torch

if TYPE_CHECKING:
    import torch


def finish_update(model: Model, sgd) -> None:
    """`Model.finish_update`, with the token features' learning rate scaled by their `learn_rate_scale`."""
    scales: Dict[int, float] = {}
    if model.has_ref("token_features"):
        features = model.get_ref("token_features")
        scales = {node.id: features.attrs.get("learn_rate_scale", 1.0) for node in features.walk()}
    for node in model.walk():
        for shim in node.shims:
            shim.finish_update(sgd)
    for node in model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                param, _ = sgd(
                    (node.id, name), node.get_param(name), node.get_grad(name), lr_scale=scales.get(node.id, 1.0)
                )
                node.set_param(name, param)


@contextmanager
def swapped_params(model: Model, params: Dict) -> Iterator[int]:
    """Put `params` (e.g. `optimizer.averages`) into every layer, transformer included.

    Yields how many weight arrays were swapped; the old weights come back on exit,
    also when the caller's block raises or its generator is closed. Thinc's
    optimizer keys a PyTorch weight's average by `(shim.id, name)`, a key that
    `Model.use_params` does not pass on to the shim, so averages of the encoder's
    weights would otherwise never be used.
    """
    restore: List[Callable[[], None]] = []
    try:
        for node in model.walk():
            for name in node.param_names:
                value = params.get((node.id, name))
                if value is not None and node.has_param(name):
                    restore.append(partial(node.set_param, name, node.get_param(name)))
                    node.set_param(name, value)
            for shim in node.shims:
                if not isinstance(shim, PyTorchShim):
                    continue
                for name, weight in shim._model.named_parameters():
                    value = params.get((shim.id, name))
                    if value is not None:
                        old = weight.detach().clone()
                        restore.append(partial(_copy_into, weight, old))
                        _copy_into(weight, xp2torch(value, device=weight.device))
        yield len(restore)
    finally:
        for undo in reversed(restore):
            undo()


def _copy_into(weight: "torch.Tensor", value: "torch.Tensor") -> None:
    """Overwrite a PyTorch weight in place, outside autograd."""
    import torch

    with torch.no_grad():
        weight.copy_(value)
