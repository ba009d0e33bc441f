"""Prometheus metrics of one server (`/metrics`)."""

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .settings import ENTITIES_PATH


class ServeMetrics:
    """The server's Prometheus metrics, in a registry of their own."""

    def __init__(self, max_batch: int, depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("spacy_wnut_requests", f"{ENTITIES_PATH} requests by status", ["status"], registry=r)
        self.latency = Histogram(
            "spacy_wnut_request_seconds",
            f"{ENTITIES_PATH} time from the request to the answer",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )
        self.texts = Counter("spacy_wnut_texts", "texts tagged", registry=r)
        self.failed_texts = Counter("spacy_wnut_failed_texts", "texts on which the pipeline raised", registry=r)
        buckets = sorted({2**i for i in range(max_batch.bit_length())} | {max_batch})
        self.batch_size = Histogram("spacy_wnut_batch_size", "texts per nlp.pipe call", buckets=buckets, registry=r)
        self.batch_seconds = Histogram(
            "spacy_wnut_batch_seconds",
            "time of one nlp.pipe call",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.queue_depth = Gauge("spacy_wnut_queue_depth", "texts waiting for a batch", registry=r)
        self.queue_depth.set_function(depth)
        self.ready = Gauge("spacy_wnut_ready", "1 once the pipeline is loaded", registry=r)
        self.connections_closed = Counter(
            "spacy_wnut_connections_closed", "connections the server closed, by reason", ["reason"], registry=r
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
