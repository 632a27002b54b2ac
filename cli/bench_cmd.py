"""`ddgan bench sample|train`: sampling and training throughput of a preset's networks."""

from __future__ import annotations

import importlib
import json
from types import ModuleType
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from cli.app import App, app, flag_option
from cli.backend_loader import BACKENDS, load_backend
from ddgan_core.benchmark import (
    PAPER_BATCH,
    PAPER_SECONDS_PER_100,
    BenchResult,
    KernelBreakdown,
    check_counts,
    check_protocol,
    summarise,
)
from ddgan_core.config import apply_overrides, preset
from ddgan_core.errors import DDGANError

bench_app = App(help="Sampling and training throughput (random weights; no checkpoint needed).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")

PRESET_HELP = "Configuration preset whose networks are timed (cifar10, tiny, toy2d, ...)."
PROFILE_HELP = ("torch: where the time goes, from torch.profiler over one more {run} after the timed ones: "
                "kernel time by kind and the longest kernels (on the CPU: operators).")


def load_bench_module(backend: str) -> ModuleType:
    """The backend's `bench` module, beside its entry module."""
    load_backend(backend)  # unknown backend or missing framework: the usual one-line errors
    name = BACKENDS[backend][0].rsplit(".", 1)[0] + ".bench"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise DDGANError(f"the {backend} backend has no benchmark module ({name}) yet") from None
        raise


def _batch(batch_size: Optional[int], protocol: str, default: int) -> int:
    if protocol == "paper":
        if batch_size not in (None, PAPER_BATCH):
            raise DDGANError(f"--protocol paper times batches of {PAPER_BATCH}; drop --batch-size {batch_size}")
        return PAPER_BATCH
    return default if batch_size is None else batch_size


def _print(result: BenchResult, as_json: bool, path: str = "eager") -> None:
    """The figures on stdout (a table, or one JSON object); on stderr, one line when other processes
    kept the cores busy as a CPU run started, since its timings are then not the machine's speed."""
    warning = result.cpu_load.warning() if result.cpu_load is not None else None
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), "path": path}))
        return
    table = Table(title=f"ddgan bench {result.kind}: {result.preset} on {result.device_name} ({result.backend}, "
                        f"{result.precision}, {path})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("batch size", f"{result.batch_size}"),
        ("timed runs (after warm-up)", f"{result.repeats} (warm-up {result.warmup})"),
        (f"seconds per batch ({result.statistic})", f"{result.seconds_per_batch:.4f}"),
        ("median / mean", f"{result.seconds_per_batch_median:.4f} / {result.seconds_per_batch_mean:.4f}"),
        ("images/s", f"{result.images_per_s:.2f}"),
    ]
    if result.kind == "sample":
        rows.insert(0, ("steps", f"{result.steps}"))
        published = result.preset == "cifar10" and result.steps == 4 and result.batch_size == 100  # as the paper timed
        rows.append(("seconds per 100 images", f"{result.seconds_per_100:.4f}"
                     + (f"  (paper: {PAPER_SECONDS_PER_100} on a V100)" if published else "")))
    else:
        rows.append(("iterations/s", f"{result.iterations_per_s:.3f}"))
    rows.append(("peak memory", f"{result.peak_memory_bytes / 2**20:.1f} MiB"))
    if result.flops_per_image is not None:
        rows.append(("model GFLOPs per image", f"{result.flops_per_image / 1e9:.3f}"))
        rows.append(("achieved TFLOP/s", f"{result.achieved_flops / 1e12:.4f}"))
    if result.fraction_of_peak is not None:
        rows.append(("fraction of device peak", f"{result.fraction_of_peak:.2%}"))
    if result.cpu_load is not None:
        load = result.cpu_load
        averages = " / ".join(f"{value:.2f}" for value in load.load_average) if load.load_average else "unknown"
        rows.append(("load average at start (1 / 5 / 15 min)", averages))
        busy = f"{load.busy_cores:.1f} of {load.cores} ({load.threads} threads timed)"
        rows.append(("cores busy with other work at start", busy))
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    if result.kernels is not None:
        console.print(_kernel_table(result.kernels))


def _kernel_table(kernels: KernelBreakdown, width: int = 70) -> Table:
    """The profiled run: kernel time by kind in the title, the longest kernels as rows."""
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in kernels.kinds.items())
    table = Table(title=f"where the time goes: {kernels.kernel_seconds * 1e3:,.1f} ms of kernels in "
                        f"{kernels.wall_seconds * 1e3:,.1f} ms ({kernels.busy:.0%} busy); {kinds}")
    for column, justify in (("kernel", "left"), ("kind", "left"), ("calls", "right"), ("ms", "right"), ("share", "right")):
        table.add_column(column, justify=justify)
    for k in kernels.top:
        name = k.name if len(k.name) <= width else k.name[: width - 1] + "…"
        table.add_row(name, k.kind, f"{k.calls}", f"{k.seconds * 1e3:,.2f}", f"{k.share:.1%}")
    return table


@bench_app.command("sample")
def bench_sample(
    preset_name: str = typer.Option("cifar10", "--preset", "-p", help=PRESET_HELP),
    backend: str = typer.Option("torch", "--backend", "-b", help="torch or tinygrad."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images per batch (default 100)."),
    steps: Optional[int] = typer.Option(None, "--steps", "-k", help="Denoising steps K <= T (default T)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 (bf16 needs CUDA)."),
    protocol: str = typer.Option("default", "--protocol", help="default (median) or paper (batch 100, mean)."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed runs first."),
    repeats: int = typer.Option(10, "--repeats", help="Timed runs."),
    as_json: bool = flag_option("--json", help="Print one JSON object."),
    fast: bool = flag_option("--fast", help="torch: compiled chain steps, channels_last, and on CUDA the whole "
                                                    "chain as one CUDA graph (compiled before timing)."),
    cuda_graph: Optional[bool] = typer.Option(None, "--cuda-graph/--no-cuda-graph", metavar="",
                                              help="With --fast on CUDA: replay one graph (default: yes)."),
    compile_mode: Optional[str] = typer.Option(None, "--compile-mode", help="With --fast: default (the default), "
                                                                        "max-autotune-no-cudagraphs, or none (not compiled)."),
    profile: bool = flag_option("--profile", help=PROFILE_HELP.format(run="batch")),
) -> None:
    """Sampling speed: images/s, latency per batch, peak memory, FLOPs per image."""
    check_protocol(protocol)
    batch = _batch(batch_size, protocol, PAPER_BATCH)
    check_counts(batch, warmup, repeats)
    config = preset(preset_name)
    module = load_bench_module(backend)
    steps = config.diffusion.timesteps if steps is None else steps
    options, path = {}, "eager"
    if not fast and (compile_mode is not None or cuda_graph is not None):
        raise DDGANError(f"{'--compile-mode' if compile_mode is not None else '--cuda-graph'} sets the --fast path: add --fast")
    if fast:
        if not hasattr(module, "make_fast_sampler"):
            raise DDGANError(f"--fast: the {backend} backend has no fast sampling path")
        mode = {None: "default", "none": None}.get(compile_mode, compile_mode)
        graph = cuda_graph is not False and module.bench_device(device, precision).type == "cuda"
        options = {"fast": True, "compile_mode": mode, "cuda_graph": graph}
        path = " + ".join([f"compiled ({mode})" if mode else "not compiled", "channels_last"] + ["CUDA graph"] * graph)
    measurement = module.bench_sample(config, batch, steps, device, precision, warmup, repeats, profile=profile, **options)
    _print(summarise(measurement, kind="sample", backend=backend, preset=preset_name, device=device or "auto",
                     precision=precision, protocol=protocol, batch_size=batch, steps=steps, warmup=warmup), as_json, path)


@bench_app.command("train")
def bench_train(
    preset_name: str = typer.Option("cifar10", "--preset", "-p", help=PRESET_HELP),
    backend: str = typer.Option("torch", "--backend", "-b", help="torch or tinygrad."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Global batch (default: the preset's)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 (bf16 needs CUDA)."),
    protocol: str = typer.Option("default", "--protocol", help="default (median) or paper (batch 100, mean)."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed iterations first."),
    repeats: int = typer.Option(10, "--repeats", help="Timed iterations."),
    as_json: bool = flag_option("--json", help="Print one JSON object."),
    fast: bool = flag_option("--fast", help="torch: the train.compile path (compiled G and D, channels_last); "
                                                    "compiles during the warm-up iterations."),
    profile: bool = flag_option("--profile", help=PROFILE_HELP.format(run="iteration (R1 only if due)")),
) -> None:
    """Training speed: images/s and iterations/s (one D and one G step each), peak memory."""
    check_protocol(protocol)
    config = preset(preset_name)
    if fast:
        config = apply_overrides(config, ["train.compile=true"])
    batch = _batch(batch_size, protocol, config.train.batch_size)
    check_counts(batch, warmup, repeats)
    module = load_bench_module(backend)
    measurement = module.bench_train(config, batch, device, precision, warmup, repeats, profile=profile)
    _print(summarise(measurement, kind="train", backend=backend, preset=preset_name, device=device or "auto",
                     precision=precision, protocol=protocol, batch_size=batch, steps=None, warmup=warmup), as_json,
           "compiled (default) + channels_last" if fast else "eager")
