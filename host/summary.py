"""The end of a validation run for people: the summary table and PASSED / FAILED lines
(`lenet-edge validate`, `lenet-edge demo`)."""

from __future__ import annotations

from rich.console import Console


def run_and_summarise(url: str, console: Console, **kwargs) -> int:
    from lenet_edge.host.validate import validate as run

    result = run(url, console=console, **kwargs)
    print_summary(result, console)
    return result.exit_code


def print_summary(result, console: Console) -> None:
    from rich.table import Table

    r = result.report
    table = Table(title="on-device validation" + (" (PARTIAL)" if r["partial"] else ""))
    if r["partial"]:
        console.print(f"[yellow]partial report: {r.get('partial_reason')}[/]")
    table.add_column("figure")
    table.add_column("value", justify="right")

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f} %"

    items = (r.get("data") or {}).get("items", "images")
    table.add_row(items, f"{r['count']} / {r['requested']}")
    for key in ("device", "tflm", "tflite", "float"):
        table.add_row(f"accuracy {key}", pct(r["accuracy"][key]))
    ensemble = r.get("ensemble")
    table.add_row("device = TFLM ensemble (41-byte answers)" if ensemble else
                  "device = TFLM logits (bytes)", pct(r["agreement"]["device_tflm_exact_logits"]))
    table.add_row("device = TFLite class", pct(r["agreement"]["device_tflite_argmax"]))
    table.add_row("device = float class", pct(r["agreement"]["device_float_argmax"]))
    if ensemble and ensemble["nets_run"]["device_mean"] is not None:
        hist = ensemble["nets_run"]["device_histogram"]
        table.add_row(f"nets run per {items[:-1]} (device)", f"{ensemble['nets_run']['device_mean']:.3f}"
                      f" ({hist.get('1', 0)} x 1, {hist.get('3', 0)} x 3)")
    from lenet_edge.host.report import unit_name

    lat = r["latency"]
    median = "n/a" if lat["median"] is None else f"{lat['median']:,}"
    if "median_us" in lat:
        median += f" ({lat['median_us']:,} us)"
    table.add_row(f"latency median ({unit_name(lat['unit'])})", median)
    if ensemble and ensemble.get("count_mean") is not None:  # a mix of 1-net and 3-net digits
        by = ensemble["count_by_nets_run"]
        table.add_row(f"  mean per {items[:-1]} (1 net, 3 nets: medians)",
                      f"{ensemble['count_mean']:,} ({by.get('1', {}).get('median', 0):,}, "
                      f"{by.get('3', {}).get('median', 0):,})")
    table.add_row(f"throughput ({items}/s)", str(r["throughput_digits_per_s"]))
    devices = r.get("devices") or []
    if len(devices) > 1:
        for d in devices:
            table.add_row(f"  {d['url']}", f"{d['count']} {items}, {d['throughput_digits_per_s']}/s")
    if r.get("per_layer"):
        pl = r["per_layer"]
        table.add_row(f"per-layer identical {items}", f"{pl['identical_digits']} / {pl['digits']}")
    Console().print(table)
    if result.failures:
        for failure in result.failures:
            console.print(f"[red]FAILED:[/] {failure}")
    elif not r["partial"]:
        console.print("[green]PASSED[/]: the device computes exactly what TFLM computes"
                      + (" (the ensemble: every score and early exit)" if ensemble else ""))
    console.print(f"report: {result.out_dir / 'report.md'}")
