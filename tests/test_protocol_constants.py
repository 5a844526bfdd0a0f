"""The protocol's constants are written twice, in the device agent's C header and in
host/protocol.py: this compares every one (the C header parsed, nothing compiled)."""

from __future__ import annotations

import re
from pathlib import Path

from lenet_edge.host import protocol as P

HEADER = Path(__file__).resolve().parents[1] / "firmware_templates" / "agent" / "lenet_agent.h"
_DEFINE = re.compile(r"^#define LENET_AGENT_(\w+) (0x[0-9A-Fa-f]+|\d+)u?\s*(?:/\*.*)?$", re.M)

# C name (after LENET_AGENT_) -> the host's value.
HOST = {
    "PROTOCOL_VERSION": P.PROTOCOL_VERSION,
    "SYNC0": P.SYNC[0],
    "SYNC1": P.SYNC[1],
    "HEADER_SIZE": P.HEADER_SIZE,
    "TRAILER_SIZE": P.TRAILER_SIZE,
    "INFO": P.INFO,
    "INFER": P.INFER,
    "TRACE": P.TRACE,
    "ECHO": P.ECHO,
    "RESET": P.RESET,
    "INFO_CHUNK": P.INFO_CHUNK,
    "RESPONSE": P.RESPONSE,
    "ERROR": P.ERROR,
    "RESULT_HEAD": P.INFER_HEAD.size,
    "TRACE_HEAD": P.TRACE_HEAD.size,
    "TRACE_REQUEST": P.TRACE_REQ_HEAD.size,
    "INFO_CHUNK_REQUEST": P.INFO_CHUNK_REQ.size,
    "INFO_CHUNK_HEAD": P.INFO_CHUNK_HEAD.size,
    "ENC_RAW": P.ENC_RAW,
    "ENC_RUNS": P.ENC_RUNS,
    "ENC_PIXELS": P.ENC_PIXELS,
}
# Status codes: C name -> the host's text for that code.
STATUS = {
    "OK": "ok",
    "BAD_LENGTH": "bad request length",
    "BAD_ENCODING": "bad input encoding",
    "INVOKE_FAILED": "inference failed",
    "BAD_LAYER": "no such layer",
    "UNKNOWN_TYPE": "unknown message type",
}
# Device-only tunables (no host counterpart).
DEVICE_ONLY = {"BYTE_TIMEOUT_MS", "MAX_LAYERS", "MIN_PAYLOAD"}


def _defines(header: Path = HEADER) -> dict[str, int]:
    return {name: int(value, 0) for name, value in _DEFINE.findall(header.read_text())}


def test_every_protocol_constant_of_the_agent_header_equals_the_hosts():
    c = _defines()
    assert set(c) == set(HOST) | set(STATUS) | DEVICE_ONLY, "a constant only one side knows"
    assert {name: c[name] for name in HOST} == HOST
    assert {name: P.STATUS_TEXT[c[name]] for name in STATUS} == STATUS
    assert c["OK"] == P.STATUS_OK
    assert len(P.STATUS_TEXT) == len(STATUS)


def test_the_header_parser_sees_a_changed_constant(tmp_path):
    """The comparison can fail: a header with one message type changed is caught."""
    changed = tmp_path / "lenet_agent.h"
    text = HEADER.read_text()
    assert "#define LENET_AGENT_ECHO 0x04u" in text
    changed.write_text(text.replace("#define LENET_AGENT_ECHO 0x04u", "#define LENET_AGENT_ECHO 0x07u"))
    assert _defines(changed)["ECHO"] == 7 != HOST["ECHO"]
