"""Human-readable summary of an export (rich table)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lenet_edge.layout import ExportLayout


def print_export_table(result, console: Console | None = None) -> None:
    console = console or Console()
    r = result.report
    table = Table(title=f"lenet-edge export -> {result.out_dir}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("model sha256", r["model_sha256"][:16] + "...")
    table.add_row("MACs dense", f"{r['macs_dense']:,}")
    table.add_row("MACs executed", f"{r['macs_executed']:,}")
    table.add_row("weights bytes", f"{r['weights_bytes']:,}")
    table.add_row("arena bytes", f"{r['arena_bytes']:,}")
    tflm = r.get("tflm_arena_bytes")
    table.add_row("TFLM arena bytes", f"{tflm:,}" if tflm else "not measured")
    for cpu, size in (r.get("code_bytes") or {}).items():
        table.add_row(f"code bytes {cpu} (-Os)", f"{size:,}")
    console.print(table)
    console.print(f"C library: {result.c_dir}   report: {ExportLayout(result.out_dir).report}")
    if result.host_library:
        console.print(f"host library: {result.host_library}")
    if result.firmware_dir:
        console.print(f"firmware: {result.firmware_dir}")
