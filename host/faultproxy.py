"""A fault-injecting TCP proxy for serial links: what a bad cable does, on purpose.

Sits between the host and a device's TCP serial port (QEMU's `-serial tcp:...`, or the
host build of the firmware) and, in both directions, drops, flips, inserts and delays
bytes at given per-byte rates; it can also reset the device once after a given number
of host bytes (through a callback, e.g. `QemuInstance.reset`). Used by the tests to show
that validation survives a bad link or stops with a clear error, and handy for trying a
real link's worst case by hand.

With `baud=N` it also paces both directions like a UART at N baud (8N1: 10 bits a byte),
so a fast emulator or the host build shows the throughput a real 115200- or 921600-baud
link would give (faults, if any, apply on top).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class FaultRates:
    """Per-byte probabilities; `delay_s` is how long one delay event stalls the stream."""

    drop: float = 0.0
    flip: float = 0.0
    insert: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.05


@dataclass
class FaultCounts:
    dropped: int = 0
    flipped: int = 0
    inserted: int = 0
    delays: int = 0
    resets: int = 0
    bytes_up: int = 0  # host -> device
    bytes_down: int = 0  # device -> host


class FaultProxy:
    """`with FaultProxy(port, rates, ...) as proxy: DeviceSession(proxy.url)`."""

    def __init__(
        self,
        target_port: int,
        rates: FaultRates,
        *,
        target_host: str = "127.0.0.1",
        seed: int = 0,
        reset_after_bytes: int | None = None,
        reset: Callable[[], None] | None = None,
        baud: int | None = None,
    ):
        self.target = (target_host, target_port)
        self.baud = baud
        # When each direction's "wire" is next free (the pacing's virtual clock).
        self._wire_free = {True: 0.0, False: 0.0}
        self.rates = rates
        self.counts = FaultCounts()
        # One generator per direction: reproducible faults, no lock held across pauses.
        self._rngs = {True: random.Random(seed), False: random.Random(seed + 1)}
        self._reset_after = reset_after_bytes
        self._reset = reset
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(1)
        self.port = self._server.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        for sock in [self._server, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            client, _ = self._server.accept()
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sockets += [client, upstream]
        pumps = [
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True),
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(4096)
                if not data:
                    break
                for piece, pause in self._mangle(data, upstream):
                    for part in self._paced(piece, upstream):
                        dst.sendall(part)
                    if pause:
                        time.sleep(pause)
        except OSError:
            pass
        finally:
            # One side gone: close both so the other side sees the link drop.
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _paced(self, piece: bytes, upstream: bool):
        """Yield `piece` in slices, each when a UART at `baud` would have finished moving it."""
        if not self.baud:
            if piece:
                yield piece
            return
        byte_s = 10.0 / self.baud
        step = max(16, int(0.002 / byte_s))  # ~2 ms of bytes a slice: sleeps stay coarse
        for at in range(0, len(piece), step):
            part = piece[at:at + step]
            now = time.monotonic()
            # Back to back with the previous slice unless the line really idled (a sleep
            # that overshot must not slow the average rate down).
            start = self._wire_free[upstream]
            if now - start > 0.005:
                start = now
            done = start + len(part) * byte_s
            self._wire_free[upstream] = done
            if done > now:
                time.sleep(done - now)
            yield part

    def _mangle(self, data: bytes, upstream: bool):
        """Split data into (bytes, pause-after) pieces with faults applied."""
        rates = self.rates
        out = bytearray()
        rng = self._rngs[upstream]
        counts = self.counts
        for byte in data:
            if upstream:
                counts.bytes_up += 1
                if self._reset_after is not None and counts.bytes_up >= self._reset_after:
                    self._reset_after = None
                    if out:
                        yield bytes(out), 0.0
                        out = bytearray()
                    counts.resets += 1
                    if self._reset:
                        self._reset()
            else:
                counts.bytes_down += 1
            if rates.delay and rng.random() < rates.delay:
                counts.delays += 1
                yield bytes(out), rates.delay_s
                out = bytearray()
            if rates.insert and rng.random() < rates.insert:
                counts.inserted += 1
                out.append(rng.randrange(256))
            if rates.drop and rng.random() < rates.drop:
                counts.dropped += 1
                continue
            if rates.flip and rng.random() < rates.flip:
                counts.flipped += 1
                byte ^= 1 << rng.randrange(8)
            out.append(byte)
        yield bytes(out), 0.0


def main(argv: list[str] | None = None) -> None:
    """`python -m lenet_edge.host.faultproxy PORT [--baud N] [--drop R ...]`: a proxy in a
    process of its own (so its pacing does not share an interpreter with the host under
    test); prints `listening socket://127.0.0.1:P`, runs until killed."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lenet_edge.host.faultproxy")
    parser.add_argument("port", type=int, help="the device's TCP serial port (e.g. QEMU's)")
    parser.add_argument("--baud", type=int, default=None, help="pace both directions like a UART at this baud rate")
    for name in ("drop", "flip", "insert", "delay"):
        parser.add_argument(f"--{name}", type=float, default=0.0, help=f"{name} probability per byte")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rates = FaultRates(drop=args.drop, flip=args.flip, insert=args.insert, delay=args.delay)
    with FaultProxy(args.port, rates, seed=args.seed, baud=args.baud) as proxy:
        print(f"listening {proxy.url}", flush=True)
        proxy._thread.join()  # one connection: done when it closes


if __name__ == "__main__":
    main()
