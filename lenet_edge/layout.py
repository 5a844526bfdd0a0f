"""The export folder's layout, known in one place.

`lenet-edge export` writes it, `build`/`flash` render and compile in it, `validate` reads
the model from it; every command takes it as `--export DIR` (export itself: `--out DIR`)
and defaults to the same folder, DEFAULT_EXPORT_DIR:

    DIR/model/lenet5_int8.tflite     the exact model the C was generated from
    DIR/model/lenet5.keras           its float twin, when exported from a .keras
    DIR/c/NAME_model.h, *.c          the C library (NAME: export --name, default lenet5)
    DIR/agent/                       the validation agent library
    DIR/host/libNAME.so              with --target host
    DIR/export_report.json
    DIR/firmware/                    the rendered firmware project (build/ inside it)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_EXPORT_DIR = Path("export")  # export --out, build/flash/validate --export


@dataclass(frozen=True)
class ExportLayout:
    root: Path

    MODEL_NAME = "lenet5_int8.tflite"
    FLOAT_MODEL_NAME = "lenet5.keras"
    REPORT_NAME = "export_report.json"

    def __init__(self, root: str | Path = DEFAULT_EXPORT_DIR):
        object.__setattr__(self, "root", Path(root))

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def model(self) -> Path:
        return self.model_dir / self.MODEL_NAME

    @property
    def float_model(self) -> Path:
        return self.model_dir / self.FLOAT_MODEL_NAME

    @property
    def c_dir(self) -> Path:
        return self.root / "c"

    def header(self, name: str = "lenet5") -> Path:
        return self.c_dir / f"{name}_model.h"

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def host_dir(self) -> Path:
        return self.root / "host"

    @property
    def report(self) -> Path:
        return self.root / self.REPORT_NAME

    def firmware_dir(self, override: str | Path | None = None) -> Path:
        """DIR/firmware, or the folder given with --firmware-dir."""
        return Path(override) if override is not None else self.root / "firmware"

    def has_library(self) -> bool:
        """True when DIR holds an exported C library (any --name)."""
        return self.c_dir.is_dir() and any(self.c_dir.glob("*_model.h"))

    @classmethod
    def of_model(cls, tflite: str | Path) -> ExportLayout | None:
        """The export a DIR/model/*.tflite belongs to, else None."""
        tflite = Path(tflite)
        return cls(tflite.parent.parent) if tflite.parent.name == "model" else None
