"""What differs between Ray releases (argument spellings, from 2.9 on) and the probe for Ray Data itself."""

import math
from typing import Any, Dict

from ...errors import MissingExtra


def require_ray() -> None:
    """Raise a clear error naming the extra to install when Ray Data is missing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise MissingExtra("--ray (Ray Data)", ["ray[data]"], "ray")


def actor_pool(actors: int) -> Dict[str, Any]:
    """`map_batches` arguments for a pool of `actors` actors, as this Ray spells them."""
    import ray
    from ray.data import ActorPoolStrategy

    version = tuple(int(part) for part in ray.__version__.split(".")[:2] if part.isdigit())
    # Ray 2.51 deprecated `concurrency` for callable classes in favour of `compute`;
    # the releases before it (from 2.9, the oldest supported) take `concurrency`.
    if version >= (2, 51):
        return {"compute": ActorPoolStrategy(size=actors)}
    return {"concurrency": actors}


def read_task_cpus(cpus: float) -> Dict[str, Any]:
    """`read_binary_files` arguments reserving `cpus` per read task, as this Ray spells them."""
    import inspect

    import ray.data

    # Newer Ray takes `num_cpus` and deprecates `ray_remote_args`; older Ray has only the latter.
    if "num_cpus" in inspect.signature(ray.data.read_binary_files).parameters:
        return {"num_cpus": cpus}
    return {"ray_remote_args": {"num_cpus": cpus}}


def blocks_of(dataset: "ray.data.Dataset", rows: int, total_rows: int) -> "ray.data.Dataset":  # noqa: F821
    """The dataset cut into blocks of about `rows` rows.

    Ray Data reads a file as one block and gives a block to one actor, so
    without this a single input file would keep every actor but one idle.
    """
    import inspect

    if "target_num_rows_per_block" in inspect.signature(dataset.repartition).parameters:
        return dataset.repartition(target_num_rows_per_block=rows)  # streaming
    return dataset.repartition(max(1, math.ceil(total_rows / rows)))  # older Ray: a barrier, still correct
