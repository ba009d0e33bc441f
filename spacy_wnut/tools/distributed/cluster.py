"""The Ray cluster: a local one on loopback (warned of where Ray listens beyond it) or one joined, and its CPUs."""

import math
import os
import time
import warnings
from typing import Optional

from ...errors import ConfigError

# CPUs reserved by each task that reads and parses an input file.
READ_CPUS = 0.25


def start_ray(address: Optional[str], num_cpus: Optional[int] = None) -> float:
    """Join the cluster at `address` (`auto`, `ray://host:port`), or start a local one without dashboard;
    returns the seconds it took. A local cluster that listens beyond loopback is warned of, with where
    (Ray 2.60 rewrites 127.0.0.1 to the machine's address and listens on every interface)."""
    import ray

    from ..listening import listeners_of

    start = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        return time.perf_counter() - start
    before = set(listeners_of(os.getpid()))
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level="ERROR",
        log_to_driver=False,
    )
    exposed = [found for found in listeners_of(os.getpid()) if found not in before and not found.loopback_only]
    if exposed:
        warnings.warn(
            f"the local Ray cluster listens on {len(exposed)} sockets beyond loopback, e.g. {exposed[0]}: Ray "
            f"{ray.__version__} has no setting to keep them on 127.0.0.1. On a machine reachable from an untrusted "
            "network, annotate without --ray, firewall these ports, or use --ray-address with a cluster in a "
            "trusted network",
            RayExposedWarning,
            stacklevel=2,
        )
    return time.perf_counter() - start


class RayExposedWarning(UserWarning):
    """A local Ray cluster that other machines can reach."""


def local_cpus(actors: int, cpus_per_actor: int) -> int:
    """Logical CPUs for a local cluster: the machine's, and at least enough for the actors and the
    reading tasks (`check_cluster_cpus`)."""
    return max(os.cpu_count() or 1, math.ceil(actors * cpus_per_actor + READ_CPUS))


def check_cluster_cpus(actors: int, cpus_per_actor: int, joined: bool) -> None:
    """Refuse (local cluster) or warn about (joined cluster) a pool that leaves no CPU for reading.

    The actors hold their CPUs for the whole run; if the cluster has no
    `READ_CPUS` left beside them, the tasks that read the input never start
    and the run waits for ever. A joined cluster may still grow (autoscaling),
    so there it is a warning.
    """
    import ray

    total = float(ray.cluster_resources().get("CPU", 0.0))
    need = actors * cpus_per_actor + READ_CPUS
    if total >= need:
        return
    message = (
        f"the Ray cluster has {total:g} CPU(s), but {actors} actor(s) x {cpus_per_actor} CPU(s) plus {READ_CPUS:g} "
        f"for reading the input need {need:g}: use fewer --actors or --cpus-per-actor"
    )
    if joined:
        warnings.warn(message + " (the run waits unless the cluster adds nodes)", stacklevel=3)
        return
    raise ConfigError(message + "; this process's local Ray was started earlier with fewer CPUs (ray.shutdown() it)")
