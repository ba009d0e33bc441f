"""Which TCP sockets a process and its descendants listen on, read from Linux's /proc.

Used to say truthfully where a local Ray cluster can be reached: Ray 2.60 rewrites a node address of
127.0.0.1 into the machine's own address and starts its gRPC servers on every interface, with no
setting to keep them on loopback.
"""

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Set

PROC = Path("/proc")
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket: its address, port and the process holding it."""

    address: str
    port: int
    pid: int
    name: str

    @property
    def loopback_only(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback

    def __str__(self) -> str:
        shown = f"[{self.address}]" if ":" in self.address else self.address
        return f"{shown}:{self.port} ({self.name}, pid {self.pid})"


def descendants(pid: int) -> Set[int]:
    """`pid` and every process below it."""
    children: Dict[int, List[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def _socket_inodes(pid: int) -> Set[str]:
    inodes = set()
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _decode(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # four little-endian 32-bit words
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def _listening_inodes() -> Iterator[tuple]:
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == TCP_LISTEN:
                address, port = fields[1].split(":")
                yield fields[9], _decode(address), int(port, 16)


def listeners_of(pid: int) -> List[Listener]:
    """Every TCP socket on which `pid` or a descendant listens (empty where /proc is not Linux's)."""
    owners = {}
    for process in descendants(pid):
        try:
            name = (PROC / str(process) / "comm").read_text().strip()
        except OSError:
            continue
        for inode in _socket_inodes(process):
            owners[inode] = (process, name)
    return sorted(
        (Listener(address, port, *owners[inode]) for inode, address, port in _listening_inodes() if inode in owners),
        key=lambda listener: (listener.name, listener.port),
    )
