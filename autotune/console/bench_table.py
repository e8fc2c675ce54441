"""The table `autotune bench` prints."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from autotune.evaluators.measurement import Benchmark
from autotune.spaces.metrics import REPORTED_STATS, fmt, unit


def print_benchmark(result: Benchmark) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=160)
    latency = result.latency
    settings = latency.settings
    table = Table(
        title=f"{result.model_dir} on {result.target}: {latency.repeats} repeats after "
        f"{settings.warmup} warm-up, prompt {settings.prompt_tokens} tokens, "
        f"{settings.new_tokens} new tokens"
    )
    table.add_column("figure", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for stat in REPORTED_STATS:
        table.add_column(stat, justify="right")
    for name, stats in latency.stats.items():
        cells = [f"{stats[s]:.1%}" if s == "cv" else fmt(stats[s]) for s in REPORTED_STATS]
        table.add_row(name, unit(name), *cells)
    console.print(table)
    memory = latency.memory
    lines = [
        f"peak resident memory {memory.peak_mem_mb:.0f} MiB "
        f"(the model and its runs added {memory.model_mem_mb:.0f} MiB)",
        f"size on disk {result.metrics['size_mb']:.2f} MiB; model load {latency.load_s:.2f} s",
    ]
    if memory.gpu_peak_mb is not None:
        lines.append(f"peak GPU memory of the process {memory.gpu_peak_mb:.0f} MiB")
    if result.accuracy is not None:
        accuracy = result.accuracy
        line = f"accuracy {accuracy.accuracy:.4f} on {len(accuracy.references)} eval examples"
        if accuracy.macro_f1 is not None:
            line += f", macro-F1 {accuracy.macro_f1:.4f}"
        lines.append(line)
    environment = result.environment
    lines.append(
        f"{environment['cpu']}, {environment['usable_cores']} usable cores, "
        f"{settings.threads} intra-op thread(s)"
        + "".join(f"; GPU {g['name']}" for g in environment["gpus"])  # type: ignore[union-attr]
    )
    for line in lines:
        console.print(line)
