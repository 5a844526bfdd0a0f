"""The `lenet-edge` command line.

Each pipeline stage owns its subcommands in its own `cli` module; they are imported only
when used, so `lenet-edge --help` stays fast and a stage's heavy imports (TensorFlow)
are paid only by the commands that need them.
"""

from __future__ import annotations

import importlib
import sys

import click

from lenet_edge import __version__
from lenet_edge.errors import LenetEdgeError

# name -> ("module:attribute", one-line help shown by `lenet-edge --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("lenet_edge.train.cli:train", "Train a LeNet on MNIST -> lenet5.keras."),
    "quantize": ("lenet_edge.quantize.cli:quantize", "Full-integer int8 TFLite conversion."),
    "export": ("lenet_edge.codegen.cli:export", "Generate bit-exact C (and firmware)."),
    "eval": ("lenet_edge.codegen.cli:evaluate", "Accuracy of float/tflite/tflm/c backends."),
    "boards": ("lenet_edge.firmware_templates.cli:boards", "List the boards and how each runs."),
    "build": ("lenet_edge.firmware_templates.cli:build", "Compile the generated firmware."),
    "flash": ("lenet_edge.firmware_templates.cli:flash", "Flash a board or start QEMU."),
    "validate": ("lenet_edge.host.cli:validate", "Check on-device accuracy over serial."),
    "bench": ("lenet_edge.bench:bench", "Benchmark instructions, flash and RAM per board."),
    "demo": ("lenet_edge.demo:demo", "The main job end to end on an emulated board."),
    "zoo": ("lenet_edge.zoo:zoo", "The LeNet family next to the 1998 paper's figures."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("lenet_edge"):
                raise click.ClickException(f"'{name}' is not available in this build") from exc
            raise
        return getattr(module, attr)

    def format_commands(self, ctx, formatter):
        # Help text from the table, so listing commands imports nothing heavy.
        rows = [(name, helptext) for name, (_, helptext) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lenet-edge")
def cli():
    """lenet-edge: LeNet-5 from MNIST to a Cortex-M, bit-exact with TFLM.

    \b
    Pipeline (each step reads the previous step's file):
      lenet-edge train     --variant modern --out runs/m
      lenet-edge quantize  --model runs/m/lenet5.keras --out runs/m
      lenet-edge export    --target cortex-m --model runs/m/lenet5_int8.tflite
      lenet-edge build     --board qemu-mps2-an386
      lenet-edge validate  --board qemu-mps2-an386
    (export, build, flash and validate share one folder, ./export; --export DIR elsewhere)
    """


def main(argv: list[str] | None = None) -> int:
    try:
        result = cli.main(args=argv, prog_name="lenet-edge", standalone_mode=False)
    except LenetEdgeError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except ModuleNotFoundError as exc:
        # A TensorFlow import that no command-level check caught (the [train] extra).
        from lenet_edge.optional import MODULES, missing_tensorflow

        if exc.name not in MODULES:
            raise
        click.secho(f"error: {missing_tensorflow('this command')}", fg="red", err=True)
        return 2
    # A command may return an int exit code (e.g. validate: 1 when a check fails).
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
