"""The validation agent as users get it: `write_agent(dir)` copies the library
(lenet_agent.c/.h), its CMakeLists.txt and the protocol document into `dir`.

`lenet-edge export` writes it to DIR/agent/, beside the C library in DIR/c/; the rendered
firmware compiles the same two sources (render.py copies them into firmware/common/).
"""

from __future__ import annotations

from pathlib import Path

from lenet_edge.firmware_templates.render import AGENT_DIR, AGENT_SOURCES

AGENT_FILES = AGENT_SOURCES + ("CMakeLists.txt", "PROTOCOL.md")


def agent_files() -> dict[str, bytes]:
    """{file name: bytes} of the agent as shipped (PROTOCOL.md is docs/PROTOCOL.md)."""
    return {name: (AGENT_DIR / name).read_bytes() for name in AGENT_FILES}


def write_agent(directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in agent_files().items():
        path = directory / name
        if not (path.is_file() and path.read_bytes() == data):
            path.write_bytes(data)
    return directory
