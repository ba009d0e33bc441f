"""Serving: `spacy wnut serve` under load on loopback, batching on and off, beside `annotate`.

Each request holds one WNUT 17 test sentence (the case where `nlp.pipe` alone gives no speed-up:
requests that arrive one at a time). For each engine, the script starts the server once per
setting (batching off: one text per `nlp` call; batching on: each `--max-batch` x `--max-wait-ms`),
sends `--requests` requests from 1, 8 and 32 concurrent clients (each cell also stopped after
`--max-seconds`), and reports requests/s, words/s, p50/p95/p99 latency and the server's peak RSS;
then `annotate`'s words/s on the same texts and engine (pipeline loaded, batch 64), and the ratios
batching on/off and server/annotate. The clients run in this process, on the same machine: they
take CPU from the server, so the figures are a lower bound of what the server does alone.

`--memory N` sends N requests (32 clients) to one batching server and samples its RSS every
`--every` requests: memory must stay flat after warm-up.

`--soak SECONDS` runs one batching server for that long under 32 load clients plus 200 connections
that never send a request plus 2 clients that send a body a byte a second (each reopened when the
server closes it): every well-formed request must be answered, the idle ones closed after the
server's `--read-timeout` (slow bodies with 408), and the RSS (sampled every 5 s) flat.
Everything is bounded in count and time, and talks to 127.0.0.1 only.

    python bench/serve.py --model training/model-tuned --engines torch,onnx
    python bench/serve.py --model training/model-tuned --max-wait-ms 0,2,5,10 --clients 32
    python bench/serve.py --model training/model-tuned --memory 50000
    python bench/serve.py --model training/model-tuned --soak 60 --requests 0
    python bench/serve.py --model tiny-model --quick
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import httpx

from results_files import write_results

ROOT = Path(__file__).resolve().parents[1]
TEST_FILE = ROOT / "assets" / "emerging.test.annotated"


def wnut_texts(limit: int = 0) -> List[Tuple[str, int]]:
    """(text, words) of the WNUT 17 test sentences, tokens joined by spaces (first `limit` if > 0)."""
    from spacy_wnut.data.conll import read_conll

    texts = [(" ".join(s.words), len(s.words)) for s in read_conll(TEST_FILE)]
    return texts[:limit] if limit else texts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status_mb(pid: int, field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak) of a process, from /proc (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


class Server:
    """A `spacy wnut serve` process on a free loopback port."""

    def __init__(self, model: str, args: Sequence[str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        command = [sys.executable, "-m", "spacy_wnut", "serve", model, "--port", self.url.rsplit(":", 1)[1]]
        command += ["--no-access-log", *args]
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready within {timeout} s")

    def rss_mb(self) -> float:
        return proc_status_mb(self.proc.pid, "VmRSS")

    def peak_rss_mb(self) -> float:
        return proc_status_mb(self.proc.pid, "VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (all its threads), from /proc (Linux)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(120)


@contextmanager
def serving(model: str, args: Sequence[str], workdir: Path) -> Iterator[Server]:
    server = Server(model, args, workdir / f"server-{len(list(workdir.glob('server-*.log')))}.log")
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
        if code != 0:
            print(f"warning: the server exited {code} (log: {server.log})", file=sys.stderr)


async def load(url: str, texts: List[Tuple[str, int]], clients: int, requests: int, max_seconds: float) -> Dict:
    """`requests` one-text requests (texts cycled) from `clients` concurrent clients, stopped after `max_seconds`.

    The clients share one aiohttp session (keep-alive connections): it spends far less CPU per request
    than httpx, and on a small machine the load generator's CPU is taken from the server.
    """
    import aiohttp

    latencies: List[float] = []
    counts = {"sent": 0, "words": 0, "errors": 0}
    deadline = time.perf_counter() + max_seconds

    async def client(http: "aiohttp.ClientSession") -> None:
        while counts["sent"] < requests and time.perf_counter() < deadline:
            text, words = texts[counts["sent"] % len(texts)]
            counts["sent"] += 1
            start = time.perf_counter()
            async with http.post(url + "/v1/entities", json={"text": text}) as response:
                await response.read()
                ok = response.status == 200
            latencies.append(time.perf_counter() - start)
            counts["words" if ok else "errors"] += words if ok else 1

    connector = aiohttp.TCPConnector(limit=clients)
    cpu = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    done = len(latencies)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if done > 1 else latencies * 99
    return {
        "clients": clients,
        "requests": done,
        "errors": counts["errors"],
        "seconds": elapsed,
        "requests_per_second": done / elapsed,
        "words_per_second": counts["words"] / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
        "client_cpu_ms_per_request": (time.process_time() - cpu) * 1000 / max(1, done),
    }


def measure_server(
    model: str, args: Sequence[str], texts, clients: Sequence[int], requests: int, max_seconds: float, workdir: Path
) -> Dict:
    """One server: a warm-up, then one load cell per client count; its peak RSS."""
    with serving(model, args, workdir) as server:
        asyncio.run(load(server.url, texts, max(clients), min(requests, 4 * max(clients)), max_seconds))  # warm-up
        cells = []
        for n in clients:
            cpu = server.cpu_seconds()
            cells.append(asyncio.run(load(server.url, texts, n, requests, max_seconds)))
            cells[-1]["server_cpu_ms_per_request"] = (server.cpu_seconds() - cpu) * 1000 / max(1, cells[-1]["requests"])
        return {"args": list(args), "cells": cells, "peak_rss_mb": server.peak_rss_mb()}


def measure_annotate(model: str, engine: Optional[str], threads: Optional[int], texts, n: int, workdir: Path) -> Dict:
    """`annotate`'s words/s on the first `n` texts (cycled), the pipeline loaded before the clock starts."""
    from spacy_wnut.tools.annotate import annotate, load_for_annotation

    source = workdir / "annotate.jsonl"
    chosen = [texts[i % len(texts)] for i in range(n)]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t, _ in chosen), encoding="utf-8")
    nlp = load_for_annotation(model, engine=engine, n_threads=threads)
    list(nlp.pipe(t for t, _ in chosen[:64]))  # warm-up
    start = time.perf_counter()
    annotate(nlp, source, workdir / "annotated.jsonl", batch_size=64, overwrite=True, progress=False)
    elapsed = time.perf_counter() - start
    return {"texts": n, "seconds": elapsed, "words_per_second": sum(w for _, w in chosen) / elapsed}


def measure_memory(model: str, args: Sequence[str], texts, n: int, every: int, max_seconds: float, workdir: Path):
    """RSS of one batching server sampled every `every` requests over `n` (32 clients)."""
    samples = []
    deadline = time.perf_counter() + max_seconds
    with serving(model, args, workdir) as server:
        samples.append({"requests": 0, "rss_mb": server.rss_mb()})
        done = 0
        while done < n and time.perf_counter() < deadline:
            cell = asyncio.run(load(server.url, texts, 32, min(every, n - done), deadline - time.perf_counter()))
            done += cell["requests"]
            samples.append(
                {"requests": done, "rss_mb": server.rss_mb(), "requests_per_second": cell["requests_per_second"]}
            )
            print(f"  {done:>8} requests: RSS {samples[-1]['rss_mb']:.0f} MB", flush=True)
        peak = server.peak_rss_mb()
    base = samples[1]["rss_mb"] if len(samples) > 2 else samples[0]["rss_mb"]  # after the first chunk (warm-up)
    return {"samples": samples, "peak_rss_mb": peak, "growth_after_warmup_mb": samples[-1]["rss_mb"] - base}


async def hostile_clients(port: int, seconds: float, idle: int, slow: int) -> Dict[str, int]:
    """`idle` connections that never send a request and `slow` clients that send a body a byte a second,
    each opened again when the server closes it, for `seconds`; what the server did to them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    seen = {"idle_opened": 0, "idle_closed_by_server": 0, "slow_opened": 0, "slow_408": 0, "slow_closed_by_server": 0}
    head = b"POST /v1/entities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"

    async def idle_connection() -> None:
        while loop.time() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            seen["idle_opened"] += 1
            try:
                await asyncio.wait_for(reader.read(), max(0.0, deadline - loop.time()))
                seen["idle_closed_by_server"] += 1
            except (asyncio.TimeoutError, ConnectionError):
                pass
            finally:
                writer.close()

    async def slow_body() -> None:
        while loop.time() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            seen["slow_opened"] += 1
            writer.write(head)
            try:
                while loop.time() < deadline:
                    writer.write(b" ")
                    await writer.drain()
                    try:
                        answer = await asyncio.wait_for(reader.read(65536), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    seen["slow_408" if answer.startswith(b"HTTP/1.1 408") else "slow_closed_by_server"] += 1
                    break
            except ConnectionError:
                seen["slow_closed_by_server"] += 1
            finally:
                writer.close()

    await asyncio.gather(*(idle_connection() for _ in range(idle)), *(slow_body() for _ in range(slow)))
    return seen


def measure_soak(model: str, args: Sequence[str], texts, seconds: float, workdir: Path) -> Dict:
    """One batching server for `seconds`: 32 load clients beside 200 idle connections and 2 slow bodies."""
    with serving(model, args, workdir) as server:
        port = int(server.url.rsplit(":", 1)[1])
        samples: List[Dict] = []

        async def sample_rss() -> None:
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                samples.append({"seconds": round(time.perf_counter() - start, 1), "rss_mb": server.rss_mb()})
                await asyncio.sleep(5.0)

        async def everything():
            return await asyncio.gather(
                load(server.url, texts, 32, 10**9, seconds), hostile_clients(port, seconds, 200, 2), sample_rss()
            )

        cell, hostile, _ = asyncio.run(everything())
        answered = httpx.get(server.url + "/ready", timeout=5).status_code == 200
    warm = [s["rss_mb"] for s in samples if s["seconds"] >= 10] or [s["rss_mb"] for s in samples]
    return {
        "seconds": seconds,
        "load": cell,
        "hostile": hostile,
        "ready_after": answered,
        "rss_samples": samples,
        "rss_growth_after_10s_mb": warm[-1] - warm[0],
    }


def markdown(results: Dict) -> str:
    lines = [
        f"Serving on loopback: {results['machine']['cores']} CPU cores ({results['machine']['cpu']}), "
        f"one-text requests of WNUT 17 test sentences; clients in the same machine.",
    ]
    if any(runs["servers"] for runs in results["engines"].values()):
        lines += cell_tables(results)
    memory = results.get("memory")
    if memory:
        first, last = memory["samples"][0], memory["samples"][-1]
        lines += [
            "",
            f"Memory: {last['requests']:,} requests, RSS {first['rss_mb']:.0f} MB at start, {last['rss_mb']:.0f} MB at "
            f"the end, {memory['growth_after_warmup_mb']:+.0f} MB after warm-up; peak {memory['peak_rss_mb']:.0f} MB.",
        ]
    soak = results.get("soak")
    if soak:
        load, hostile = soak["load"], soak["hostile"]
        rss = [s["rss_mb"] for s in soak["rss_samples"]]
        lines += [
            "",
            f"Soak, {soak['seconds']:g} s: 32 clients sent {load['requests']:,} requests "
            f"({load['requests_per_second']:.0f} req/s, p99 {load['p99_ms']:.0f} ms), "
            f"{load['errors']} not answered 200, "
            f"beside 200 idle connections ({hostile['idle_opened']} opened, {hostile['idle_closed_by_server']} closed "
            f"by the server) and 2 slow bodies ({hostile['slow_opened']} opened, {hostile['slow_408']} answered 408, "
            f"{hostile['slow_closed_by_server']} closed otherwise); ready after: {soak['ready_after']}. RSS "
            f"{min(rss):.0f}-{max(rss):.0f} MB, {soak['rss_growth_after_10s_mb']:+.1f} MB from 10 s to the end.",
        ]
    errors = sum(c["errors"] for r in results["engines"].values() for s in r["servers"].values() for c in s["cells"])
    lines += ["", f"Non-200 answers: {errors}."]
    return "\n".join(lines) + "\n"


def cell_tables(results: Dict) -> List[str]:
    """The per-cell table and the ratios table (none in a `--requests 0` memory run)."""
    lines = [
        "",
        "| engine | batching | clients | requests | req/s | words/s | p50 ms | p95 ms | p99 ms | server CPU ms/req "
        "| client CPU ms/req | server peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine, runs in results["engines"].items():
        for name, run in runs["servers"].items():
            for cell in run["cells"]:
                lines.append(
                    f"| {engine} | {name} | {cell['clients']} | {cell['requests']} "
                    f"| {cell['requests_per_second']:,.1f} | {cell['words_per_second']:,.0f} | {cell['p50_ms']:.1f} "
                    f"| {cell['p95_ms']:.1f} | {cell['p99_ms']:.1f} | {cell['server_cpu_ms_per_request']:.2f} "
                    f"| {cell['client_cpu_ms_per_request']:.2f} | {run['peak_rss_mb']:.0f} |"
                )
    lines += ["", "| engine | annotate words/s | ratio | value | goal |", "|---|---|---|---|---|"]
    for engine, runs in results["engines"].items():
        for ratio in runs["ratios"]:
            lines.append(
                f"| {engine} | {runs['annotate']['words_per_second']:,.0f} | {ratio['name']} | {ratio['value']:.2f} "
                f"| {ratio['goal']} |"
            )
    return lines


def ratios(servers: Dict, annotate_wps: float, clients: int) -> List[Dict]:
    """batching on / off (requests/s) and server / annotate (words/s), at `clients` clients."""
    at = {name: next(c for c in run["cells"] if c["clients"] == clients) for name, run in servers.items()}
    off = at.pop("off")
    best_name, best = max(at.items(), key=lambda item: item[1]["requests_per_second"])
    return [
        {
            "name": f"{best_name} / off, req/s at {clients} clients",
            "value": best["requests_per_second"] / off["requests_per_second"],
            "goal": ">= 2",
        },
        {
            "name": f"server ({best_name}) / annotate, words/s at {clients} clients",
            "value": best["words_per_second"] / annotate_wps,
            "goal": ">= 0.8",
        },
    ]


def int_list(value: str) -> List[int]:
    return [int(v) for v in value.split(",") if v]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="trained pipeline directory (or run-time pipeline)")
    parser.add_argument("--engines", default="", help="comma-separated engines (default: the pipeline's own)")
    parser.add_argument("--clients", type=int_list, default=[1, 8, 32])
    parser.add_argument(
        "--requests", type=int, default=2000, help="requests per cell (clients x setting); 0: --memory only"
    )
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time limit of each cell")
    parser.add_argument("--max-batch", type=int_list, default=[64], help="batching settings to try (comma-separated)")
    parser.add_argument("--max-wait-ms", default="5", help="batching settings to try (comma-separated)")
    parser.add_argument("--threads", type=int, default=None, help="--threads of the server and annotate's pipeline")
    parser.add_argument("--server-args", default="", help="more options for every server, e.g. '--mmap-threshold 0'")
    parser.add_argument(
        "--mmap-thresholds",
        default="",
        help="try each batching setting with each of these --mmap-threshold values side by side, e.g. 65536,1048576,0",
    )
    parser.add_argument("--memory", type=int, default=0, help="also: RSS over this many requests (e.g. 50000)")
    parser.add_argument("--every", type=int, default=5000, help="--memory: sample the RSS every N requests")
    parser.add_argument("--memory-seconds", type=float, default=1800.0, help="--memory: time limit")
    parser.add_argument("--soak", type=float, default=0, help="also: a soak of this many seconds (e.g. 60)")
    parser.add_argument("--quick", action="store_true", help="a few requests of a few texts: the harness only")
    parser.add_argument("--results", type=Path, default=None, help="write DATE-serve[-quick].{json,md} here")
    parser.add_argument("--workdir", type=Path, default=None, help="server logs and annotate files (default: temp)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.max_seconds = [1, 4], min(args.requests, 24), min(args.max_seconds, 20)
        args.every = min(args.every, 20)
    texts = wnut_texts(200 if args.quick else 0)
    waits = [float(w) for w in args.max_wait_ms.split(",") if w]
    thresholds = [t for t in args.mmap_thresholds.split(",") if t] or [None]
    threads = (["--threads", str(args.threads)] if args.threads else []) + args.server_args.split()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-serve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: Dict = {"machine": machine(), "model": str(args.model), "settings": vars_of(args), "engines": {}}
    for engine in ([e for e in args.engines.split(",") if e] or [None]) if args.requests else []:
        name = engine or "pipeline's"
        chosen = (["--engine", engine] if engine else []) + threads
        settings = {"off": chosen + ["--no-batching"]}
        for batch in args.max_batch:
            for wait in waits:
                for mmap in thresholds:
                    label = f"on ({batch}, {wait:g} ms{'' if mmap is None else f', mmap {mmap}'})"
                    settings[label] = chosen + ["--max-batch", str(batch), "--max-wait-ms", str(wait)]
                    settings[label] += [] if mmap is None else ["--mmap-threshold", mmap]
        servers = {}
        for label, server_args in settings.items():
            print(f"[{name}] batching {label} ...", flush=True)
            servers[label] = measure_server(
                str(args.model), server_args, texts, args.clients, args.requests, args.max_seconds, workdir
            )
        print(f"[{name}] annotate ...", flush=True)
        annotated = measure_annotate(str(args.model), engine, args.threads, texts, args.requests, workdir)
        results["engines"][name] = {
            "servers": servers,
            "annotate": annotated,
            "ratios": ratios(servers, annotated["words_per_second"], max(args.clients)),
        }
    if args.memory:
        print(f"memory: {args.memory} requests ...", flush=True)
        first = [e for e in args.engines.split(",") if e][:1]
        server_args = (["--engine", first[0]] if first else []) + threads
        results["memory"] = measure_memory(
            str(args.model), server_args, texts, args.memory, args.every, args.memory_seconds, workdir
        )
    if args.soak:
        print(f"soak: {args.soak:g} s ...", flush=True)
        first = [e for e in args.engines.split(",") if e][:1]
        server_args = (["--engine", first[0]] if first else []) + threads
        results["soak"] = measure_soak(str(args.model), server_args, texts, args.soak, workdir)
    table = markdown(results)
    if args.results:
        stem = args.results / f"{datetime.date.today().isoformat()}-serve{'-quick' if args.quick else ''}"
        write_results(stem, results, table)
    else:
        print(table)


def vars_of(args: argparse.Namespace) -> Dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def machine() -> Dict:
    """CPU model and cores, and the versions that matter here (no torch import: a run-time install has none)."""
    import importlib.metadata

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line), cpu
        )
    versions = {}
    for package in ("spacy", "fastapi", "uvicorn", "onnxruntime", "torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(), **versions}


if __name__ == "__main__":
    main()
