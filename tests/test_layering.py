"""Stages only look back: every import in the package, read with ast (function-level
imports included), follows the layering docs/ARCHITECTURE.md describes.

    core (lenet_edge/: errors, layout, quantmath, cpus, ...)  <  train  <  quantize  <
    codegen  <  firmware_templates  <  host  <  compositions (lenet_edge/flows.py, bench,
    demo, zoo, cycles, cmsis_nn)  <  commands (lenet_edge/cli.py)

- the core imports only the core;
- a stage imports the core, earlier stages and itself; its `cli.py` (the stage's commands)
  may also call `lenet_edge.flows`, where work spanning several stages is composed;
- the compositions import anything but a command module;
- no module imports a command module (`lenet_edge/cli.py` loads them by name).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("train", "quantize", "codegen", "firmware_templates", "host")
COMPOSITIONS = {"flows", "bench", "demo", "zoo", "cycles", "cmsis_nn"}
ENTRY = {"cli", "__main__"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py the package installs."""
    found = {}
    for folder in ("lenet_edge",) + STAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [] if folder == "lenet_edge" else [folder]
            parts += [p for p in rel.parts if p != "__init__"]
            found[".".join(["lenet_edge", *parts])] = path
    return found


def _imports(path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported lenet_edge module) for every import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("lenet_edge")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("lenet_edge"):
            # `from lenet_edge import flows` imports a module; `import __version__` does not.
            subs = [f"{node.module}.{a.name}" for a in node.names]
            out += [(node.lineno, m) for m in subs if m in known] or [(node.lineno, node.module)]
    return out


def _layer(module: str) -> tuple[str, str]:
    """(kind, name): ("core", x), ("stage", stage), ("composition", x) or ("entry", x)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core", "lenet_edge"
    if parts[1] in STAGES:
        return "stage", parts[1]
    if parts[1] in COMPOSITIONS:
        return "composition", parts[1]
    if parts[1] in ENTRY:
        return "entry", parts[1]
    return "core", parts[1]


def _is_command(module: str) -> bool:
    parts = module.split(".")
    return parts[-1] == "cli" or module == "lenet_edge.__main__"


def _violation(src: str, dst: str) -> str | None:
    kind, name = _layer(src)
    dkind, dname = _layer(dst)
    if _is_command(dst) and kind != "entry":
        return "imports a command module"
    if kind == "core" and dkind != "core":
        return "the core imports only the core"
    if kind == "stage":
        if dkind == "stage" and STAGES.index(dname) > STAGES.index(name):
            return f"stage {name} imports a later stage"
        if dkind == "composition" and not (_is_command(src) and dst == "lenet_edge.flows"):
            return "a stage calls a composition (only its cli.py may call lenet_edge.flows)"
        if dkind == "entry":
            return "a stage imports the command line"
    return None


def test_stages_only_look_back():
    modules = _modules()
    known = set(modules)
    assert {"lenet_edge.flows", "lenet_edge.codegen.export", "lenet_edge.host.cli"} <= known
    problems = []
    for src, path in modules.items():
        for line, dst in _imports(path, known):
            why = _violation(src, dst)
            if why:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {dst}: {why}")
    assert not problems, "\n".join(problems)


def test_the_rule_catches_a_forward_import():
    """The checker itself: the import codegen/export.py used to make is refused."""
    assert _violation("lenet_edge.codegen.export", "lenet_edge.firmware_templates.render")
    assert _violation("lenet_edge.host.cli", "lenet_edge.bench")
    assert _violation("lenet_edge.demo", "lenet_edge.host.cli")
    assert _violation("lenet_edge.layout", "lenet_edge.codegen.emit")
    assert _violation("lenet_edge.host.cli", "lenet_edge.flows") is None
    assert _violation("lenet_edge.host.references", "lenet_edge.codegen.reader") is None
