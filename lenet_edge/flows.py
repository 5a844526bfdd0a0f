"""The flows: the stages composed, written once.

export (codegen) -> agent + firmware project (firmware_templates) -> build -> QEMU ->
device session / validation (host). Each stage imports only earlier stages and the
shared core (tests/test_layering.py); what needs several stages at once lives here, and
the commands (`export --board`, `build`, `flash`, `validate --board`, `demo`, `bench`)
call these functions instead of chaining the stages themselves.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from lenet_edge.layout import DEFAULT_EXPORT_DIR, ExportLayout


def resolve_board(board=None, export_dir=None, firmware_dir=None, board_file=None):
    """firmware_templates.board_file.resolve_board (for the commands of earlier stages)."""
    from lenet_edge.firmware_templates.board_file import resolve_board as resolve

    return resolve(board, export_dir, firmware_dir, board_file)


def export_model(model_bytes: bytes, out_dir: str | Path = DEFAULT_EXPORT_DIR, *, board=None,
                 **options):
    """codegen's export, plus what later stages add to the folder: the validation agent
    (DIR/agent/) and, with ``board``, the rendered firmware project (DIR/firmware/)."""
    from lenet_edge.codegen.export import export
    from lenet_edge.firmware_templates.agent_files import write_agent
    from lenet_edge.firmware_templates.boards import get_board
    from lenet_edge.firmware_templates.render import render_firmware

    if board is not None:
        board = get_board(board)  # an unknown board is refused before anything is written
    result = export(model_bytes, out_dir, **options)
    result.agent_dir = write_agent(ExportLayout(out_dir).agent_dir)
    if board is not None:
        result.firmware_dir = Path(render_firmware(board, out_dir))
    return result


def ensure_export(export_dir: str | Path = DEFAULT_EXPORT_DIR, console=None) -> ExportLayout:
    """The export in ``export_dir``; when it holds none, the bundled model is exported there
    first (what `build`, `flash` and `validate --board` do with nothing exported)."""
    layout = ExportLayout(export_dir)
    if not layout.has_library():
        from lenet_edge.bundled import bundled_model

        model = bundled_model(kind="tflite")
        if console is not None:
            console.print(f"no export in {layout.root}: exporting the bundled model ({model.name})"
                          " first", markup=False, highlight=False)
        export_model(model.read_bytes(), layout.root, measure_tflm=False, measure_code=False)
    return layout


def firmware_for(board, model_dir: str | Path | None, work_dir: Path, console,
                 baud: int | None = None) -> tuple[Path, Path]:
    """(elf, export dir) for `board`: builds DIR's firmware, exporting the model first when
    `model_dir` is not an export directory (into ``work_dir``/export), or, not given, the
    default export folder (the bundled model exported there when it holds none). An
    ensemble folder is exported as `export --ensemble` does."""
    from lenet_edge.codegen.export import resolve_model
    from lenet_edge.host.references import resolve_models

    if model_dir is None:
        export_dir = ensure_export(DEFAULT_EXPORT_DIR, console).root
    elif ExportLayout(model_dir).has_library():
        export_dir = Path(model_dir)
    else:
        files = resolve_models(model_dir)
        export_dir = work_dir / "export"
        if files.ensemble is not None:
            console.print(f"exporting the ensemble {files.ensemble.folder} to C in {export_dir} ...")
            export_ensemble_model(files.ensemble, export_dir, cpus=(board.cpu,))
        else:
            console.print(f"exporting {files.tflite} to C in {export_dir} ...")
            export_model(resolve_model(files.tflite), export_dir, measure_tflm=False,
                         measure_code=False)
    console.print(f"building firmware for {getattr(board, 'name', board)} ...")
    return build(board, export_dir, console, baud=baud).elf, export_dir


def build(board, export_dir: str | Path = DEFAULT_EXPORT_DIR, console=None,
          firmware_dir: str | Path | None = None, **options):
    """firmware_templates' build of ``export_dir``'s firmware for ``board``; with a console,
    what the build changed in an existing project is said there."""
    from lenet_edge.firmware_templates.build import build_firmware, print_sync

    result = build_firmware(board, export_dir, firmware_dir, **options)
    if console is not None:
        print_sync(console, result)
    return result


@contextmanager
def emulated_device(board, elf: Path, emulate: bool = False, extra_args: tuple[str, ...] = (),
                    pin: bool = True):
    """QEMU running ``elf`` for ``board`` (killed on exit): yields its console's pyserial URL."""
    from lenet_edge.firmware_templates.qemu import run_qemu

    with run_qemu(board, elf, emulate=emulate, extra_args=extra_args, pin=pin) as url:
        yield url


@contextmanager
def emulated_session(board, elf: Path, emulate: bool = False, extra_args: tuple[str, ...] = ()):
    """A host DeviceSession with ``elf`` running in QEMU (bench, cycle estimates)."""
    from lenet_edge.host.session import DeviceSession

    with emulated_device(board, elf, emulate, extra_args) as url, DeviceSession(url) as session:
        yield session


def validation_board(board: str | None, board_file: Path | None, emulate: bool,
                     url: str | None):
    """The board `validate` starts in QEMU, or None when it talks to a device at --port (a
    real board at --port says what it is); the errors of `validate --board`."""
    from lenet_edge.errors import LenetEdgeError
    from lenet_edge.firmware_templates.boards import emulated_board

    if board is None and board_file is None:
        return None
    chosen = resolve_board(board, board_file=board_file)
    if url is not None:
        if chosen.is_qemu or emulate:
            raise LenetEdgeError("give either --port or an emulated --board, not both")
        return None
    return emulated_board(chosen, emulate)


def validate_on_emulator(board, model_dir, out_dir: Path, console, *, emulate: bool = False,
                         baud: int | None = None, jobs: int = 1, **options) -> int:
    """Build ``board``'s firmware for the model, run it in ``jobs`` QEMUs and validate it
    there (several emulators share the images; one merged report)."""
    import contextlib

    from lenet_edge.host.references import resolve_models
    from lenet_edge.host.summary import run_and_summarise

    if model_dir is not None:
        resolve_models(model_dir)  # a model or ensemble refused before anything is built
    elf, export_dir = firmware_for(board, model_dir, Path(out_dir), console, baud)
    # Several emulators would each pin themselves to the CPU idlest at their start: the
    # same one, as the others wait idle for their connection. Let the OS spread them.
    pin = jobs == 1
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(emulated_device(board, elf, emulate=emulate, pin=pin))
                for _ in range(jobs)]
        console.print(f"QEMU {board.name} serving its console at {', '.join(urls)}")
        return run_and_summarise(urls if jobs > 1 else urls[0], console, model_dir=export_dir,
                                 out_dir=out_dir, baudrate=baud, **options)


def check_board_name(ctx, param, value):
    """click callback of every --board option: one check (the board table's), one error
    style (`error: unknown board ...`), whichever command it is."""
    if value is None:
        return None
    from lenet_edge.firmware_templates.boards import get_board

    if isinstance(value, tuple):  # a repeatable option (bench --boards)
        return tuple(get_board(v).name for v in value)
    return get_board(value).name


def train_boosted_ensemble(out_dir: str | Path, *, net1: str | Path | None = None,
                           seed: int = 0, epochs: int | None = None, data_dir=None,
                           train_limit: int | None = None, eval_limit: int | None = None,
                           pool_copies: int | None = None, log=print):
    """Boosted LeNet-4 end to end (train, then quantize): OUT/net{1,2,3}.keras,
    OUT/train_metrics.json and the ensemble folder in OUT (net{1,2,3}_int8.tflite +
    ensemble.json with W_k, T and the int8 figures). ``net1``: a .keras to reuse as net 1."""
    import json
    import time

    from lenet_edge.quantize.convert import load_keras_model
    from lenet_edge.quantize.ensemble import THRESHOLD_DIGITS, quantize_ensemble
    from lenet_edge.train.boosted import POOL_COPIES, train_boosted
    from lenet_edge.train.training import save_keras

    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    given = load_keras_model(net1) if net1 is not None else None
    result = train_boosted(given, seed=seed, data_dir=data_dir, epochs=epochs,
                           train_limit=train_limit, pool_copies=pool_copies or POOL_COPIES,
                           log=log)
    if net1 is not None:
        result.metrics["net1"] = f"reused: {net1}"
    for k, model in enumerate(result.models):
        save_keras(model, out_dir / f"net{k + 1}.keras")
    (out_dir / "train_metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")
    log("quantizing the three nets, choosing T on TFLM's outputs, evaluating under TFLM")
    ensemble = quantize_ensemble(result.models, out_dir, data_dir, eval_limit,
                                 extra={"float": result.metrics},
                                 threshold_digits=min(train_limit or THRESHOLD_DIGITS,
                                                      THRESHOLD_DIGITS))
    ensemble.meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "ensemble.json").write_text(json.dumps(ensemble.meta, indent=2) + "\n")
    return ensemble


def export_ensemble_model(ensemble, out_dir: str | Path = DEFAULT_EXPORT_DIR, *, board=None,
                          name: str = "boosted", cpus=None, optimize: str = "size") -> dict:
    """An ensemble folder (Boosted LeNet-4) exported as one C library with the model API
    (codegen/ensemble.py), plus the agent and, with ``board``, the firmware project: the
    firmware runs the ensemble (early exit and sum) as it runs one model."""
    from lenet_edge.codegen.ensemble import export_ensemble
    from lenet_edge.firmware_templates.agent_files import write_agent
    from lenet_edge.firmware_templates.boards import get_board
    from lenet_edge.firmware_templates.render import render_firmware

    if board is not None:
        board = get_board(board)
        cpus = cpus or (board.cpu,)
    report = export_ensemble(ensemble, out_dir, name=name, cpus=cpus, optimize=optimize)
    write_agent(ExportLayout(out_dir).agent_dir)
    if board is not None:
        render_firmware(board, out_dir)
    return report
