"""A session with a device running the lenet-edge firmware, over any pyserial URL.

`DeviceSession(url)` opens the link (`/dev/ttyACM0`, `socket://127.0.0.1:P`,
`rfc2217://...`), asks INFO, and runs inferences with several requests in flight.

Reliability (docs/PROTOCOL.md, "Host behaviour"): every transmission gets a fresh
sequence number; the device answers strictly in order, so an answer to a later
transmission proves an earlier unanswered one was lost, and it is resent at once. When an
answer is late, a short probe follows the requests in flight (on a lossy link one follows
every request): its in-order answer proves a missing one lost. A request is resent only
when so proven, after a device reset, or when its answer was wrong: a retransmission
timeout (RFC 6298's estimator over every transmission's round trip, between MIN_RTO_S
and `timeout`, doubled after each timeout) only sends a probe, so a slow device is never
taken for a lossy link. Long replies come in chunks (INFO_CHUNK, TRACE), each retried on
its own. When nothing intact at all arrives for (`retries` + 1) x `timeout` seconds the
session gives up with a clear error. Every answer is checked (both CRCs, the model-hash
prefix, and the CRC of the input the device actually used), so a corrupted or
misattributed answer is never taken as a result.
"""

from __future__ import annotations

import socket
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, Iterator

import numpy as np
import serial

from lenet_edge.errors import LenetEdgeError
from lenet_edge.host import protocol as P
from lenet_edge.host.pixel_coder import InputEncoder

BANNER = b"lenet-edge "
FAULT = b"FAULT "
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_RETRIES = 5
MAX_ATTEMPTS = 40  # per request: beyond this the link is too bad to be useful
INFO_ATTEMPTS = 4 * MAX_ATTEMPTS  # a whole ~500-byte INFO (an agent without INFO_CHUNK)
# The longest chunk of INFO's text or of a traced tensor the host asks for: a reply's
# chance to arrive intact falls exponentially with its length (at 4.5e-3 damaging faults
# per byte, 51 % for a 150-byte frame, 8 % for INFO's ~560), and each chunk is retried on
# its own.
REPLY_CHUNK_BYTES = 128
INFO_ROUNDS = 3  # INFO re-read from scratch when its chunks came from different texts
READ_WAIT_S = 0.01
# The host never has more request bytes in flight than the device's receive ring holds.
MAX_WINDOW_BYTES = 4096
# After the boot banner of the device we connected to, requests sent while it booted are
# resent (uncounted: nothing was lost on the link) if this passes without an answer. Long
# enough for a loaded host running QEMU (0.3 s was exceeded in CI-like runs), and it costs
# a wait only once per session, when a request really was lost during the boot.
BOOT_GRACE_S = 1.0
TAIL_PROBE_S = 0.25  # "late" before any round trip is measured (the first INFO)
# Floor of the adaptive timeout on a link that proved lossy. A timeout only sends a probe
# (nothing is resent before the device proves it lost), so a short one saves a faulty
# link the wait.
MIN_RTO_S = 0.2
# Until the link proves lossy, a slow device (QEMU on a loaded host stalls for 100s of
# ms) is far likelier than a loss, and a probe arriving during an inference adds its
# receive interrupt to the measured count: the timeout is at least this, and no probe
# goes out earlier while an INFER or TRACE is in flight.
CLEAN_MIN_RTO_S = 0.5
MEASURED = (P.INFER, P.TRACE)  # requests whose answer carries a measured count


class RttEstimator:
    """RFC 6298 retransmission timeout from measured round trips, clamped to
    [MIN_RTO_S, ceiling]; `ceiling` until measured. Every transmission has its own sequence
    number, so the round trip of a resent request is not ambiguous (Karn's rule is for
    protocols that cannot tell which transmission an answer is for): all are sampled."""

    def __init__(self, ceiling: float):
        self.ceiling = ceiling
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = ceiling

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(max(self.srtt + 4 * self.rttvar, MIN_RTO_S), self.ceiling)

    def back_off(self) -> None:
        self.rto = min(2 * self.rto, self.ceiling)


class LossEstimator:
    """The share of request transmissions lost, smoothed over the last ~20: above LOSSY
    the link is lossy (probes then follow every request)."""

    LOSSY = 0.1

    def __init__(self):
        self.rate = 0.0

    def sample(self, lost: bool) -> None:
        self.rate += 0.05 * (float(lost) - self.rate)

    @property
    def lossy(self) -> bool:
        return self.rate > self.LOSSY


class _Retry(Exception):
    """An answer that arrived intact but is not a valid result (resend the request)."""


@dataclass
class LinkStats:
    sent_frames: int = 0
    sent_bytes: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    resets_seen: int = 0
    stale_answers: int = 0
    bad_echoes: int = 0
    banner_bytes: int = 0  # boot banner lines: expected text, not garbage

    def as_dict(self, deframer: P.DeframerStats | None = None) -> dict:
        out = dict(self.__dict__)
        if deframer is not None:
            out.update(
                received_frames=deframer.frames,
                header_errors=deframer.header_errors,
                crc_errors=deframer.crc_errors,
                garbage_bytes=deframer.garbage_bytes - self.banner_bytes,
            )
        return out


@dataclass
class InferResult:
    output: np.ndarray  # int8 logits
    count: int  # counter steps for lenet5_invoke (unit: info counter_unit)


@dataclass
class LayerTrace:
    layer: int
    tensor_index: int
    data: np.ndarray  # int8, flat
    count: int  # counter steps of this op


@dataclass(eq=False)  # identity: two requests for equal digits are still two requests
class _Request:
    key: object
    type: int
    payload: bytes
    check: Callable[[P.Frame], object]
    attempts: int = 0
    max_attempts: int = MAX_ATTEMPTS
    sends: int = 0
    done: bool = False
    probe: bool = False  # an empty ECHO that only asks "is the device there?"
    unknown_ok: bool = False  # an ERROR answer (unknown type) goes to `check`, not an error


@dataclass
class _Tx:
    tx_id: int
    request: _Request
    size: int
    sent_at: float = field(default=0.0)
    suspect: bool = False  # in flight at a timeout: its attempt is counted already


class _Phase(Enum):
    """Where an exchange is: requests still to send; all sent, answers awaited (a late
    one brings a late probe); every request answered (probes may still be out)."""

    SENDING = "sending"
    DRAINING = "draining"
    DONE = "done"


class _Exchange:
    """One pipelined exchange of a session: a state machine driven by `run()`.

    Each round: send what the window allows (`_fill_window`; on a lossy link each request
    with a probe behind it), probe if an answer is late (`_probe_if_late`), read and settle
    answers (`_receive`, which yields results), then
    the two timers: the boot grace (`_boot_grace`) and the retransmission timeout
    (`_on_timeout`). A request is queued (`resend`), in flight (its transmissions in
    `outstanding`), or done; a transmission is forgotten when answered or lost (`lose`).
    """

    def __init__(self, session: "DeviceSession", requests: Iterable[_Request], what: str):
        self.s = session
        self.what = what
        self.source = iter(requests)
        self.resend: deque[_Request] = deque()
        self.outstanding: OrderedDict[int, _Tx] = OrderedDict()  # by tx id = send order
        self.by_seq: dict[int, _Tx] = {}  # every transmission of a request not yet answered
        self.in_flight = 0  # bytes the device's receive ring may hold: frames sent, not freed
        self.held = 0  # of those, the last answered frame's (see `_settle`)
        self.exhausted = False
        now = time.monotonic()
        self.last_progress = now
        self.last_send = now
        self.silent_since = now  # nothing intact arrived since then
        self.answered_any = False
        self.alive = False  # since the last timeout, some intact frame (or frame header) came back
        self.crc_errors_at_timeout = session.deframer.stats.crc_errors
        self.boot_resend_at: float | None = None
        self.booted_at: float | None = None  # the banner of the boot we connected to
        self.boot_errors = 0

    # --- the states --------------------------------------------------------------------

    @property
    def phase(self) -> _Phase:
        if self.resend or not self.exhausted:
            return _Phase.SENDING
        if all(t.request.probe for t in self.outstanding.values()):
            return _Phase.DONE
        return _Phase.DRAINING

    def run(self) -> Iterator[tuple[object, object]]:
        while True:
            self._fill_window()
            if self.phase is _Phase.DONE:
                # Their answers may still come, in a later exchange: expected, not stale.
                self.s._probes_in_flight.update(t.tx_id & 0xFFFF for t in self.outstanding.values())
                return
            self._probe_if_late()
            progressed = yield from self._receive()
            now = time.monotonic()
            self._boot_grace(now, progressed)
            if progressed:
                self.last_progress = now
                self.silent_since = now
            elif self.outstanding and self.s._timed_out(now - self.last_progress, now):
                self._on_timeout(now)

    # --- sending -------------------------------------------------------------------------

    def _next_request(self) -> _Request | None:
        if self.resend:
            return self.resend[0]
        if self.exhausted:
            return None
        try:
            request = next(self.source)
        except StopIteration:
            self.exhausted = True
            return None
        self.resend.append(request)
        return request

    def _fill_window(self) -> None:
        """Send while the window allows (always at least one request in flight). The
        window keeps room for a probe, which is always sent."""
        while (request := self._next_request()) is not None:
            frame_len = len(request.payload) + P.OVERHEAD
            if (self.outstanding and not request.probe
                    and self.in_flight + frame_len > self.s.window_bytes - P.OVERHEAD):
                return
            self.resend.popleft()
            self._send(request)
            if (not request.probe and self.s.loss.lossy
                    and self.in_flight + P.OVERHEAD <= self.s.window_bytes - P.OVERHEAD):
                # On a lossy link most requests or answers are lost, and often every one
                # in flight: a 12-byte probe right behind each (its round trip is lost 5x
                # less often than a 220-byte request's) proves a loss within one round
                # trip instead of a late-probe wait or a timeout. (Its receive interrupt
                # lands in that request's inference and adds to its count: only on a
                # link that proved lossy.)
                self._send(_probe())

    def _send(self, request: _Request) -> None:
        s = self.s
        self.last_send = time.monotonic()
        frame_len = len(request.payload) + P.OVERHEAD
        tx = _Tx(s._next_tx, request, frame_len, time.monotonic())
        s._next_tx += 1
        seq = tx.tx_id & 0xFFFF
        stale = self.by_seq.pop(seq, None)  # 65536 sends ago: forget it
        if stale is not None:
            self.outstanding.pop(stale.tx_id, None)
        self.by_seq[seq] = tx
        self.outstanding[tx.tx_id] = tx
        self.in_flight += frame_len
        request.sends += 1
        s._write(P.encode_frame(request.type, seq, request.payload))
        if len(self.outstanding) == 1:
            self.last_progress = time.monotonic()

    def _probe_if_late(self) -> None:
        """An answer is late (nothing sent or answered for twice the smoothed round trip):
        a short probe behind the requests in flight. The device answers in order, so its
        answer proves any earlier missing answer lost (resent at once) instead of waiting
        for a timeout: at the tail of a run, and whenever every request in flight was
        lost (a window of ~3 digits on a noisy link). It also completes a frame that lost
        its last bytes, which the device would otherwise wait for up to its 500 ms byte
        timeout, holding up what follows. At most one per late interval; one is always
        allowed (the window keeps room for it), more only within the window. Late only:
        a probe arriving mid-inference adds its receive interrupt to the measured count
        (so, until the link proves lossy, none while an INFER or TRACE is in flight)."""
        outstanding = self.outstanding.values()
        if (all(t.request.probe for t in outstanding)
                or time.monotonic() - max(self.last_send, self.last_progress) <= self.s._tail_probe_delay()):
            return
        if not self.s.loss.lossy and any(t.request.type in MEASURED for t in outstanding):
            return  # the timeout probes (CLEAN_MIN_RTO_S)
        if (any(t.request.probe for t in outstanding)
                and self.in_flight + P.OVERHEAD > self.s.window_bytes - P.OVERHEAD):
            return
        self._send(_probe())

    # --- answers -------------------------------------------------------------------------

    def _receive(self) -> Iterator[tuple[object, object]]:
        """Read what came back; yield each valid result. Returns whether any came."""
        s = self.s
        errors_before = s._frame_errors()
        frames = s.deframer.feed(s._read())
        if s._scan_garbage():
            self._on_banner(errors_before)
        progressed = False
        for frame in frames:
            result = self._on_frame(frame)
            if result is not None:
                progressed = True
                yield result
        return progressed

    def _on_frame(self, frame: P.Frame) -> tuple[object, object] | None:
        """Settle the transmission `frame` answers; (key, result) for a valid answer."""
        s = self.s
        self.alive = True
        tx = self.by_seq.get(frame.seq)
        if tx is None and frame.seq in s._probes_in_flight:
            s._probes_in_flight.discard(frame.seq)
            return None
        if tx is None or tx.request.done:
            if tx is None or not tx.request.probe:  # (a probe given up may still answer)
                s.stats.stale_answers += 1
            return None
        request = tx.request
        if request.probe:
            self._settle(tx)
            # A short round trip, but a measured one: after a timeout (a lost INFO, say)
            # it brings the timeout back down instead of doubling it again.
            s.rtt.sample(time.monotonic() - tx.sent_at)
            return None
        if frame.type == P.ERROR and not request.unknown_ok:
            _, text = P.response_status(frame.payload)
            raise LenetEdgeError(f"the device rejected {self.what}: {text} (firmware too old?)")
        if frame.type not in (request.type | P.RESPONSE, P.ERROR):
            s.stats.stale_answers += 1
            return None
        try:
            result = request.check(frame)
        except _Retry:
            s.stats.bad_echoes += 1
            self._lose(tx)
            return None
        self._settle(tx)
        s.rtt.sample(time.monotonic() - tx.sent_at)  # this transmission's: unambiguous
        s.loss.sample(False)
        self.answered_any = True
        s._answered_once = True
        return request.key, result

    def _settle(self, tx: _Tx) -> None:
        """`tx` was answered: its request is done, every transmission of it is forgotten,
        and (the device answers in order) anything sent before it is lost.

        The device frees a request's bytes in its receive ring only after writing the
        answer, so the answered frame still counts in the window until the next answer
        (which proves it freed): without that, on a loaded host the next request can
        reach a full ring (an M55 on QEMU dropped ~200-1,300 bytes per 100 clean digits)."""
        request = tx.request
        request.done = True
        self.in_flight -= self.held
        self.held = 0
        for other in [t for t in self.by_seq.values() if t.request is request]:
            del self.by_seq[other.tx_id & 0xFFFF]
            if other.tx_id in self.outstanding:
                self.outstanding.pop(other.tx_id)
                if other is tx:
                    self.held = tx.size
                else:
                    self.in_flight -= other.size
        for earlier in [t for t in self.outstanding.values() if t.tx_id < tx.tx_id]:
            self._lose(earlier)
        if request in self.resend:
            self.resend.remove(request)

    def _lose(self, tx: _Tx, counted: bool = True) -> None:
        """`tx` will not be answered: queue its request again (bounded by its attempts).
        Sent before the banner of the boot we connected to, with no damaged frame since,
        it was lost to the boot, not to the link: resent uncounted."""
        if (counted and self.booted_at is not None and tx.sent_at <= self.booted_at
                and self.s._frame_errors() == self.boot_errors):
            counted = False
        self.outstanding.pop(tx.tx_id, None)
        self.in_flight -= tx.size
        request = tx.request
        if request.probe:
            request.done = True  # a probe is never resent: the next timeout sends another
            return
        if request.done or request in self.resend:
            return
        if not counted:  # sent while the device booted: not a fault of the link
            self.resend.append(request)
            return
        if not tx.suspect:  # (a suspect's attempt was counted at the timeout)
            self._count_attempt(request)
        self.s.loss.sample(True)
        self.s.stats.retransmissions += 1
        self.resend.append(request)

    def _count_attempt(self, request: _Request) -> None:
        request.attempts += 1
        if request.attempts >= request.max_attempts:
            raise LenetEdgeError(
                f"{self.what} request failed {request.attempts} times: the serial link to "
                f"{self.s.url} loses or corrupts too much data (check cable, baud rate)"
            )

    def _lose_all(self, counted: bool = True) -> None:
        for tx in list(self.outstanding.values()):
            self._lose(tx, counted)

    # --- boot banners --------------------------------------------------------------------

    def _on_banner(self, errors_before: int) -> None:
        if self.s._answered_once:
            # The device rebooted mid-run: whatever it had queued is gone.
            self._lose_all()
        else:
            # The boot we connected to: what was sent meanwhile may still be read.
            self.booted_at = time.monotonic()
            self.boot_resend_at = self.booted_at + min(self.s.timeout, BOOT_GRACE_S)
            self.boot_errors = errors_before  # this read may hold a damaged answer too

    def _boot_grace(self, now: float, progressed: bool) -> None:
        """After the first boot's banner: resend what was sent while it booted if no
        answer came within the grace (uncounted, unless damaged frames arrived)."""
        if self.boot_resend_at is None or not (progressed or now >= self.boot_resend_at):
            return
        if not progressed:
            # Damaged frames since the banner: the device answered, the link lost it.
            self._lose_all(counted=self.s._frame_errors() != self.boot_errors)
        self.boot_resend_at = None
        self.last_progress = now

    # --- timeouts ------------------------------------------------------------------------

    def _on_timeout(self, now: float) -> None:
        s = self.s
        s.stats.timeouts += 1
        s.rtt.back_off()
        # A device that sends intact frames (or intact frame headers whose payload was then
        # damaged) is there: the link is noisy and each request is bounded by MAX_ATTEMPTS.
        # Nothing intact at all for (retries + 1) x timeout seconds means nobody (or no
        # lenet-edge firmware) is answering.
        self.alive = self.alive or s.deframer.stats.crc_errors != self.crc_errors_at_timeout
        if self.alive:
            self.silent_since = now
        elif now - self.silent_since >= s.timeout * (s.retries + 1) * 0.999:
            raise s._silence_error(self.what, self.answered_any)
        # Waiting for the rest of a "frame" behind a header that only looked valid would
        # hold up every real answer after it.
        s.deframer.give_up_partial()
        # Nothing is resent yet: the device may only be slow (QEMU on a loaded host stalls
        # for a second), and what it still holds would overflow its receive ring behind
        # the resends. A probe asks: its answer, in order behind every request in flight,
        # proves the unanswered ones lost (then resent at once, `_settle`); their own late
        # answers settle them. Each timeout counts an attempt, so a device that never
        # answers a request is still given up. (A short probe also shows the device is
        # there when a long frame on a noisy link keeps being damaged.)
        for tx in list(self.outstanding.values()):
            if tx.request.probe:
                self._lose(tx)  # an earlier probe's answer is overdue too
            else:
                tx.suspect = True
                self._count_attempt(tx.request)
        self.resend.appendleft(_probe())
        self.last_progress = now
        self.alive = False
        self.crc_errors_at_timeout = s.deframer.stats.crc_errors


def _probe() -> _Request:
    """An empty ECHO that only asks "is the device there?" (12 bytes each way)."""
    return _Request(None, P.ECHO, b"", lambda frame: None, probe=True)


def _disable_nagle(port) -> None:
    """On a TCP link (socket://, rfc2217://) send small frames at once: with Nagle's
    algorithm a frame written behind an unacknowledged one waits for the peer's delayed
    ACK (tens of ms), which throttles pipelined requests. pyserial does not set this."""
    sock = getattr(port, "_socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class DeviceSession:
    """One open link to a device. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        on_text: Callable[[str], None] | None = None,
    ):
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.rtt = RttEstimator(timeout)
        self.loss = LossEstimator()
        self._probes_in_flight: set[int] = set()  # seqs of probes an exchange left behind
        self._last_rx = 0.0
        self.on_text = on_text
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=READ_WAIT_S)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise LenetEdgeError(
                f"cannot open serial port {url!r}: {exc}. Check the device is connected "
                "(or the emulator is running) and the URL is right, e.g. /dev/ttyACM0 or "
                "socket://127.0.0.1:PORT."
            ) from exc
        _disable_nagle(self._port)
        self.deframer = P.Deframer()
        self.stats = LinkStats()
        self._next_tx = 0
        self._garbage_tail = b""
        self._garbage_sample = bytearray()
        self._info: P.DeviceInfo | None = None
        self._info_tag = 0  # of the last INFO read in chunks
        self._answered_once = False
        self.expected_hash4: bytes | None = None
        self.window_bytes = 0  # 0: one request at a time (until INFO says more)
        self.encoder = InputEncoder()  # raw or runs until INFO lists more
        # Inputs coded together (ahead of the link, in a thread). Larger is cheaper per
        # input; smaller pulls fewer inputs ahead (devices sharing one stream of inputs).
        self.encode_chunk = 256

    # --- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        try:
            self._port.close()
        except Exception:  # closing a dead link must not hide the real error
            pass

    def __enter__(self) -> "DeviceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def link_stats(self) -> dict:
        return self.stats.as_dict(self.deframer.stats)

    # --- messages --------------------------------------------------------------------

    def info(self, refresh: bool = False) -> P.DeviceInfo:
        """The device's INFO; the first call also sizes the pipelining window."""
        if self._info is not None and not refresh:
            return self._info
        info = self._read_info()
        for key in ("model_hash", "input_size", "output_size"):
            if key not in info.fields:
                raise LenetEdgeError(f"device INFO lacks {key!r}: firmware too old or not lenet-edge")
        if info.int("protocol") != P.PROTOCOL_VERSION:
            raise LenetEdgeError(
                f"device speaks protocol {info.get('protocol')}, this host speaks "
                f"{P.PROTOCOL_VERSION}: rebuild the firmware with this lenet-edge"
            )
        self._info = info
        self.window_bytes = min(max(info.int("rx_buffer"), 0), MAX_WINDOW_BYTES)
        self.deframer.max_payload = max(info.int("max_payload"), P.MIN_MAX_PAYLOAD)
        if self.expected_hash4 is None:
            self.expected_hash4 = P.hash_prefix(info.model_hash)
        self.encoder = InputEncoder.for_device(info)  # the densest encoding it decodes
        return info

    def _read_info(self) -> P.DeviceInfo:
        """INFO's text in chunks of REPLY_CHUNK_BYTES, each retried on its own, all read
        from one snapshot of its values (one tag); checked against the text's CRC. An
        agent without INFO_CHUNK answers it as an unknown type: then one whole INFO."""
        for _ in range(INFO_ROUNDS):
            self._info_tag = self._info_tag % 255 + 1  # 1..255: 0 asks for fresh values
            (first,) = self._info_chunks([0])
            if first is None:
                return self._whole_info()
            if first.size and not first.chunk:
                raise LenetEdgeError(f"device at {self.url} answered INFO_CHUNK with an empty chunk")
            rest = self._info_chunks(range(len(first.chunk), first.size, len(first.chunk)))
            text = bytearray(first.size)
            covered = 0
            for chunk in (first, *rest):
                if (chunk.size, chunk.text_crc) != (first.size, first.text_crc):
                    break  # another text (the device reset meanwhile): read it again
                text[chunk.offset : chunk.offset + len(chunk.chunk)] = chunk.chunk
                covered += len(chunk.chunk)
            else:
                if covered == first.size and P.crc32(bytes(text)) == first.text_crc:
                    return P.parse_info_text(bytes(text))
        raise LenetEdgeError(f"the INFO of the device at {self.url} kept changing while it was read")

    def _info_chunks(self, offsets) -> list[P.InfoChunk | None]:
        """INFO_CHUNK replies for these offsets (None: the agent does not know INFO_CHUNK)."""
        tag = self._info_tag

        def request(offset: int) -> _Request:
            def check(frame: P.Frame) -> P.InfoChunk | None:
                if frame.type == P.ERROR:
                    return None
                try:
                    chunk = P.parse_info_chunk(frame.payload)
                except P.ProtocolError as exc:
                    raise LenetEdgeError(f"device at {self.url} answered INFO with an error: {exc}")
                if chunk.tag != tag or chunk.offset != offset:
                    raise _Retry("INFO chunk answer for another chunk")
                return chunk

            payload = P.info_chunk_request(tag, offset, REPLY_CHUNK_BYTES)
            return _Request(offset, P.INFO_CHUNK, payload, check, unknown_ok=True)

        offsets = list(offsets)
        got = dict(self._exchange([request(off) for off in offsets], what="INFO"))
        return [got[off] for off in offsets]

    def _whole_info(self) -> P.DeviceInfo:
        def check(frame: P.Frame) -> P.DeviceInfo:
            try:
                return P.parse_info(frame.payload)
            except P.ProtocolError as exc:
                raise LenetEdgeError(f"device at {self.url} answered INFO with an error: {exc}")

        # A ~500-byte answer is damaged ~10x as often as an INFER answer on a noisy link;
        # each attempt costs about one round trip (the late probe), so allow more.
        request = _Request("info", P.INFO, b"", check, max_attempts=INFO_ATTEMPTS)
        ((_, info),) = list(self._exchange([request], what="INFO"))
        return info

    def expect_model(self, model_hash_hex: str) -> None:
        """Accept only answers computed by this model (sha256 hex of the .tflite)."""
        self.expected_hash4 = P.hash_prefix(model_hash_hex)

    def echo(self, data: bytes) -> bytes:
        def check(frame: P.Frame) -> bytes:
            status, text = P.response_status(frame.payload)
            if status:
                raise LenetEdgeError(f"ECHO failed: {text}")
            return frame.payload[1:]

        ((_, out),) = list(self._exchange([_Request("echo", P.ECHO, data, check)], what="ECHO"))
        return out

    def reset_device(self) -> None:
        """Ask the firmware to reset itself (it answers first, then reboots)."""
        request = _Request("reset", P.RESET, b"", lambda frame: None)
        list(self._exchange([request], what="RESET"))

    def infer(self, values: np.ndarray) -> InferResult:
        ((_, result),) = list(self.infer_stream([(0, values)]))
        return result

    def infer_stream(self, inputs: Iterable[tuple[object, np.ndarray]]) -> Iterator[tuple[object, InferResult]]:
        """Run many inputs pipelined; yields (key, result) as answers arrive (in order of
        completion, which is the input order unless a request had to be resent)."""
        info = self.info()
        output_size = info.int("output_size")
        input_size = info.int("input_size")

        def sized(items):
            for key, values in items:
                values = np.ascontiguousarray(values, dtype=np.int8).reshape(-1)
                if values.size != input_size:
                    raise LenetEdgeError(f"input has {values.size} values, the device model takes {input_size}")
                yield key, values

        def make(key, values, encoded) -> _Request:
            want_crc = P.input_crc(values)

            def check(frame: P.Frame) -> InferResult:
                try:
                    reply = P.parse_infer(frame.payload, output_size)
                except P.ProtocolError as exc:
                    raise LenetEdgeError(f"device failed an inference: {exc}") from exc
                self._check_model(reply.hash4)
                if reply.input_crc != want_crc:
                    raise _Retry("input CRC echo differs")
                return InferResult(reply.output, reply.count)

            return _Request(key, P.INFER, encoded, check)

        encoded = self.encoder.stream(sized(inputs), chunk=self.encode_chunk)
        return self._exchange((make(k, v, e) for k, v, e in encoded), what="INFER")

    def trace(self, values: np.ndarray) -> list[LayerTrace]:
        """Every traced tensor of one inference (all chunks), with per-op counts."""
        info = self.info()
        layers = info.int("traced_tensors")
        if layers <= 0:
            raise LenetEdgeError("the firmware's model has no traced tensors (per-layer mode unavailable)")
        values = np.ascontiguousarray(values, dtype=np.int8).reshape(-1)
        encoded = self.encoder.encode(values)
        want_crc = P.input_crc(values)
        max_payload = max(info.int("max_payload"), 64)
        max_chunk = min(max_payload - P.TRACE_HEAD.size - 4 * layers, REPLY_CHUNK_BYTES)

        def request(layer: int, offset: int) -> _Request:
            def check(frame: P.Frame) -> P.TraceReply:
                try:
                    reply = P.parse_trace(frame.payload)
                except P.ProtocolError as exc:
                    raise LenetEdgeError(f"device failed a traced inference: {exc}") from exc
                self._check_model(reply.hash4)
                if reply.input_crc != want_crc:
                    raise _Retry("input CRC echo differs")
                if reply.layer != layer or reply.offset != offset or reply.num_layers != layers:
                    raise _Retry("trace answer for another chunk")
                return reply

            return _Request((layer, offset), P.TRACE, P.trace_request(layer, offset, max_chunk, encoded), check)

        # First chunk of every layer (which also tells each tensor's size), then the rest.
        firsts = dict(self._exchange([request(k, 0) for k in range(layers)], what="TRACE"))
        rest_keys = [
            (k, off)
            for k in range(layers)
            for off in range(len(firsts[(k, 0)].chunk), firsts[(k, 0)].size, max_chunk)
        ]
        rest = dict(self._exchange([request(k, off) for k, off in rest_keys], what="TRACE"))
        counts = firsts[(0, 0)].counts
        traces = []
        for k in range(layers):
            first = firsts[(k, 0)]
            data = bytearray(first.size)
            data[: len(first.chunk)] = first.chunk
            for (layer, off), reply in rest.items():
                if layer == k:
                    data[off : off + len(reply.chunk)] = reply.chunk
            traces.append(LayerTrace(k, first.tensor_index, np.frombuffer(bytes(data), np.int8).copy(), counts[k]))
        return traces

    def _check_model(self, hash4: bytes) -> None:
        if self.expected_hash4 is not None and hash4 != self.expected_hash4:
            raise LenetEdgeError(
                f"the device answered with model {hash4.hex()}..., expected "
                f"{self.expected_hash4.hex()}...: the firmware changed during the run "
                "(another model was flashed, or the device reset into other firmware)"
            )

    # --- the pipelined exchange ---------------------------------------------------------

    def _exchange(self, requests: Iterable[_Request], what: str) -> Iterator[tuple[object, object]]:
        """Send requests with up to `window_bytes` in flight; yield (key, checked result)."""
        return _Exchange(self, requests, what).run()

    def _tail_probe_delay(self) -> float:
        """How long after the last send an answer counts as late: twice the smoothed
        round trip once measured (once on a lossy link, where a probe is cheap next to
        the answers it saves waiting for: ~7 % faster at 5e-3 faults per byte), else
        TAIL_PROBE_S; never beyond the timeout."""
        factor = 1 if self.loss.lossy else 2
        late = factor * self.rtt.srtt if self.rtt.srtt is not None else TAIL_PROBE_S
        return min(max(late, 0.02), self.rtt.rto)

    def _timed_out(self, waited: float, now: float) -> bool:
        """No answer for one retransmission timeout, unless a reply is still arriving
        (a valid frame header in, its bytes flowing); never longer than `timeout`."""
        rto = self.rtt.rto if self.loss.lossy else max(self.rtt.rto, min(CLEAN_MIN_RTO_S, self.timeout))
        if waited > self.timeout:
            return True
        if waited <= rto:
            return False
        return not (self.deframer.in_frame() and now - self._last_rx < rto)

    def _frame_errors(self) -> int:
        return self.deframer.stats.crc_errors + self.deframer.stats.header_errors

    def _silence_error(self, what: str, answered_any: bool) -> LenetEdgeError:
        waited = self.timeout * (self.retries + 1)
        if answered_any:
            return LenetEdgeError(
                f"the device at {self.url} stopped answering {what} requests "
                f"(nothing valid for {waited:.0f} s); it may have crashed or been disconnected"
            )
        sample = bytes(self._garbage_sample[:80])
        if self.deframer.stats.garbage_bytes:
            return LenetEdgeError(
                f"no valid answer to {what} from {self.url} within {waited:.0f} s, but "
                f"{self.deframer.stats.garbage_bytes} bytes of other data arrived "
                f"(starting {sample!r}): wrong baud rate, or not lenet-edge firmware"
            )
        return LenetEdgeError(
            f"nothing answered {what} on {self.url} within {waited:.0f} s: is the "
            "lenet-edge firmware running there (and the board out of reset)?"
        )

    # --- raw I/O ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise LenetEdgeError(f"writing to {self.url} failed: {exc}") from exc
        self.stats.sent_frames += 1
        self.stats.sent_bytes += len(data)

    def _read(self) -> bytes:
        """Whatever has arrived; waits at most READ_WAIT_S for the first byte."""
        try:
            data = self._port.read(1)
            if data:
                self._port.timeout = 0
                try:
                    data += self._port.read(1 << 16)
                finally:
                    self._port.timeout = READ_WAIT_S
        except (serial.SerialException, OSError) as exc:
            raise LenetEdgeError(f"the serial link {self.url} failed: {exc}") from exc
        if data:
            self._last_rx = time.monotonic()
        return data

    def _scan_garbage(self) -> bool:
        """Look at non-frame bytes: report text lines, spot a boot banner (True) or a fault."""
        garbage = self.deframer.take_garbage()
        if not garbage:
            return False
        if len(self._garbage_sample) < 256:
            self._garbage_sample += garbage[: 256 - len(self._garbage_sample)]
        text = self._garbage_tail + garbage
        rebooted = False
        fault_at = text.find(FAULT)
        if fault_at >= 0:
            end = text.find(b"\n", fault_at)
            if end >= 0:
                line = text[fault_at:end].decode("ascii", "replace").strip()
                raise LenetEdgeError(f"the device crashed and reported: {line}")
        at = text.find(BANNER)
        if at < 0 and not self._answered_once:
            # The end of a boot line whose start was lost while the link opened (pyserial's
            # socket:// drops what arrived during open): device text, not link damage.
            end = text.rfind(b"\n")
            if end >= 0 and all(32 <= c < 127 or c in (9, 10, 13) for c in text[:end + 1]):
                self.stats.banner_bytes += end + 1
                self._garbage_tail = text[end + 1:][-64:]
                return True
        if at >= 0:
            end = text.find(b"\n", at)
            if end >= 0:
                # The banner before the first answer is just the boot we connected to.
                if self._answered_once:
                    self.stats.resets_seen += 1
                self.stats.banner_bytes += end + 1 - at
                rebooted = True
                if self.on_text:
                    self.on_text(text[at:end].decode("ascii", "replace").strip())
                text = text[end + 1 :]
        self._garbage_tail = text[-64:]
        return rebooted
