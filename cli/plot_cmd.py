"""`ddgan plot [RUN | --run RUN]`: training curves, the reverse chain level by level, and (mixture1d) the model's
denoising steps over the exact ones."""

from __future__ import annotations

import pathlib
from typing import Optional

import numpy as np
import typer
from rich.console import Console

from cli.app import app, flag_option, seed_option
from cli.backend_loader import load_backend
from ddgan_core.datasets import load_dataset
from ddgan_core.errors import DDGANError
from ddgan_core.evaluation import STEP_QUANTILES, EntryChainModel, mixture_quantile, scaled_mixture
from ddgan_core.metrics.denoising import best_gaussian_step, mixture_support
from ddgan_core.mixture import GaussianMixture
from ddgan_core.oracle import MixtureOracle
from ddgan_core.output_paths import check_new_file, check_output_folder
from ddgan_core.pictures import image_grid, mark_centres
from ddgan_core.rundir import RunDir, newest_run
from ddgan_core.schedule import schedule_from_config
from ddgan_core.session import own_last_checkpoint

CURVES = (("losses", ("loss_d", "loss_g")), ("R1 penalty", ("r1",)), ("learning rate", ("lr_g", "lr_d")),
          ("throughput", ("images_per_s",)))
CHAINS = {"images": 8, "points": 2000, "line": 10_000}
STEP_DRAWS = 10_000
PICTURES = ("curves.png", "chain.png", "steps.png")  # what plot writes, in this order


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _number(value: object) -> float:
    """A logged value as a float; missing or non-numeric values are gaps in the curve."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _curve_titles(config) -> dict[str, str]:
    """Panel titles that say what was logged: R1 as applied (lazily, so it repeats between its
    steps), and throughput in the data's own items."""
    train = config.train
    every = f", every {train.lazy_reg} steps" if train.lazy_reg > 1 else ""
    items = "images" if config.generator.kind != "mlp" else "samples"
    return {"R1 penalty": f"R1 penalty (gamma/2) E|grad D|^2, gamma {train.r1_gamma:g}{every}",
            "throughput": f"throughput ({items}/s)"}


def plot_curves(run: RunDir, path: pathlib.Path) -> pathlib.Path:
    """Losses, R1, learning rates and throughput against the step, from metrics.jsonl."""
    records = [r for r in run.read_metrics() if isinstance(r.get("step"), int)]
    if not records:
        raise DDGANError(f"{run.metrics_path} holds no logged steps yet")
    config = run.config()
    titles = _curve_titles(config)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.6), constrained_layout=True)
    steps = np.array([r["step"] for r in records])
    for ax, (title, keys) in zip(axes, CURVES):
        for key in keys:
            values = np.array([_number(r.get(key)) for r in records], dtype=np.float64)
            ax.plot(steps, values, label=key, lw=1.2)
        ax.set_title(titles.get(title, title), fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    axes[2].set_yscale("log")
    fig.suptitle(f"training curves: {run.path} ({config.data.dataset}, T = {config.diffusion.timesteps})")
    return _save(fig, path)


def _exact_marginals(mixture: GaussianMixture, config, scale: float) -> list[GaussianMixture]:
    """q(x_k) in data units for k = T .. 0."""
    oracle = MixtureOracle(scaled_mixture(mixture, 1.0 / scale), schedule_from_config(config.diffusion))
    return [scaled_mixture(oracle.marginal(k), scale) for k in range(config.diffusion.timesteps, -1, -1)]


def plot_chain(trajectory: np.ndarray, config, mixture: GaussianMixture | None, path: pathlib.Path) -> pathlib.Path:
    """Each level x_T .. x_0 of the trajectory (levels, n, ...): image rows, or one panel per level
    of points over the exact marginal q(x_k) (its density in 1-D, its component centres in 2-D)."""
    levels = trajectory.shape[0]
    timesteps = config.diffusion.timesteps
    labels = [f"x_{timesteps - index}" for index in range(levels)]
    if trajectory.ndim == 5:
        return _plot_image_chain(trajectory, labels, config, path)
    scale = float(config.data.scale)
    exact = _exact_marginals(mixture, config, scale) if mixture is not None else None
    plt = _pyplot()
    fig, axes = plt.subplots(1, levels, figsize=(3.6 * levels, 3.6), squeeze=False, constrained_layout=True)
    for index, ax in enumerate(axes[0]):
        points = trajectory[index].reshape(trajectory.shape[1], -1)
        drawn = "prior draws" if index == 0 else "model"  # x_T is drawn from N(0, I), not by the generator
        if points.shape[1] == 1:
            ax.hist(points[:, 0], bins=120, density=True, alpha=0.6, label=drawn)
            if exact is not None:
                lo, hi = mixture_support(exact[index], n_sd=4.0)
                xs = np.linspace(lo, hi, 1500)
                ax.plot(xs, exact[index].prob(xs), color="black", lw=1.2, label="exact q(x_k)")
        else:
            ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.4, label=drawn)
            if exact is not None:
                mark_centres(ax, exact[index].means, "centres of q(x_k)")
            ax.set_aspect("equal")
        ax.set_title(labels[index])
        ax.set_xlabel("x" if points.shape[1] == 1 else "x1")
        ax.set_ylabel("density" if points.shape[1] == 1 else "x2")
        if points.shape[1] == 1:
            ax.legend(fontsize=7, loc="upper right")
        else:  # below the panel (inside, it hides the modes at the corners), with markers large enough to see
            legend = ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
            for handle in legend.legend_handles:
                handle.set_sizes([20])
    fig.suptitle(f"reverse chain, {trajectory.shape[1]:,} chains, {config.data.dataset}, T = {timesteps}"
                 + _units_note(scale))
    return _save(fig, path)


def _units_note(scale: float) -> str:
    """Where the data is rescaled for the diffusion, say that the axes are data units (so x_T is
    N(0, scale^2 I) there, not N(0, I))."""
    return "" if scale == 1.0 else f"\nin data units: the diffusion runs on x / {scale:g}, so x_T ~ N(0, {scale:g}^2 I) here"


def _plot_image_chain(trajectory: np.ndarray, labels: list[str], config, path: pathlib.Path) -> pathlib.Path:
    """(levels, n, C, H, W): one row per chain, a column per level x_T .. x_0, headed by its name."""
    chains, channels, height, width = trajectory.shape[1:]
    grid = image_grid(np.swapaxes(trajectory, 0, 1).reshape(-1, channels, height, width), nrow=len(labels))
    plt = _pyplot()
    tile = 1.1 * max(1.0, 32 / height)  # inches per level: small images drawn larger, nearest-neighbour
    fig, ax = plt.subplots(figsize=(tile * len(labels) + 1, tile * chains * height / width + 1), constrained_layout=True)
    ax.imshow(grid[..., 0] if channels == 1 else grid, cmap="gray" if channels == 1 else None, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_xticks([2 + (width + 2) * i + width / 2 for i in range(len(labels))], labels)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_title(f"reverse chain, {chains} chains (rows), {config.data.dataset}, T = {config.diffusion.timesteps}",
                 fontsize=10)
    return _save(fig, path)


def plot_steps(model: EntryChainModel, mixture: GaussianMixture, config, seed: int, path: pathlib.Path) -> pathlib.Path:
    """mixture1d: at x_{k+1} on the quartiles of q(x_{k+1}), the model's draws of x_k (histogram)
    over the exact q(x_k | x_{k+1}) and its best single Gaussian (dashed), one row per step."""
    scale = float(config.data.scale)
    timesteps = config.diffusion.timesteps
    oracle = MixtureOracle(scaled_mixture(mixture, 1.0 / scale), schedule_from_config(config.diffusion))
    plt = _pyplot()
    fig, axes = plt.subplots(timesteps, len(STEP_QUANTILES), figsize=(4.2 * len(STEP_QUANTILES), 2.8 * timesteps),
                             squeeze=False, constrained_layout=True)
    for row, t in enumerate(range(timesteps, 0, -1)):
        points = [mixture_quantile(oracle.marginal(t), p) for p in STEP_QUANTILES]
        draws = model.step(np.repeat(points, STEP_DRAWS)[:, None], t, seed + t).reshape(len(points), STEP_DRAWS)
        for ax, x_t, drawn in zip(axes[row], points, draws):
            truth = oracle.denoising(np.array([x_t]), t)
            mean, variance = best_gaussian_step(truth)
            lo, hi = mixture_support(truth, n_sd=4.0)
            xs = np.linspace(lo, hi, 1500)
            ax.hist(scale * drawn, bins=100, range=(scale * lo, scale * hi), density=True, alpha=0.6, label="model")
            ax.plot(scale * xs, truth.prob(xs) / scale, color="black", lw=1.2, label="exact")
            gaussian = np.exp(-0.5 * (xs - mean) ** 2 / variance) / np.sqrt(2 * np.pi * variance)
            ax.plot(scale * xs, gaussian / scale, color="black", lw=1, ls="--", label="moment-matched Gaussian")
            ax.set_title(f"x_{t} = {scale * x_t:+.3f} -> x_{t - 1}", fontsize=9)
            ax.set_xlabel(f"x_{t - 1}")
            ax.legend(fontsize=7)
    fig.suptitle("denoising steps: the model's p_theta(x_k | x_(k+1)) against the exact q(x_k | x_(k+1)) and the "
                 "moment-matched Gaussian a diffusion model's step could be at best" + _units_note(scale))
    return _save(fig, path)


@app.command("plot")
def plot(
    run_path: Optional[pathlib.Path] = typer.Argument(None, metavar="RUN", show_default=False,
                                                      help="Run directory (default: the newest under ./runs)."),
    run_option: Optional[pathlib.Path] = typer.Option(None, "--run", help="The run directory, as `sample` and `eval` take it."),
    out: Optional[pathlib.Path] = typer.Option(None, "--out", "-o", help="Output folder (default RUN/plots)."),
    backend: str = typer.Option("torch", "--backend", "-b", help="torch or tinygrad (samples the chain)."),
    seed: int = seed_option(),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda when available)."),
    force: bool = flag_option("--force", help="Replace pictures of these names already in --out (RUN/plots is redrawn always)."),
) -> None:
    """Pictures of a run: curves.png, chain.png, and steps.png for mixture1d."""
    if run_path is not None and run_option is not None and run_path != run_option:
        raise DDGANError(f"two runs given: {run_path} and --run {run_option}; pass one")
    chosen = run_path if run_path is not None else run_option
    run = RunDir.existing(chosen) if chosen is not None else newest_run(hint="pass RUN")
    own_last_checkpoint(run)  # not another run's, copied in
    folder = out if out is not None else run.path / "plots"
    check_output_folder(folder)
    if out is not None:  # a folder of the user's: its files are not this command's to redraw
        for name in PICTURES:
            check_new_file(folder / name, force)
    curves, chain, steps = (folder / name for name in PICTURES)
    written = [plot_curves(run, curves)]
    if run.last_checkpoint.is_file():
        entry = load_backend(backend)
        config = run.config()
        kind = "images" if config.generator.kind != "mlp" else ("line" if config.generator.data_dim == 1 else "points")
        _, trajectory, _ = entry.sample(run.last_checkpoint, CHAINS[kind], None, seed, device=device, trajectory=True)
        mixture = load_dataset(config.data.dataset).mixture if kind != "images" else None
        written.append(plot_chain(trajectory, config, mixture, chain))
        if kind == "line" and mixture is not None:
            model = EntryChainModel(entry, run.last_checkpoint, config, device)
            written.append(plot_steps(model, mixture, config, seed, steps))
    for path in written:  # whole lines, however narrow the terminal: paths to copy
        Console().print(f"wrote {path}", soft_wrap=True, highlight=False, markup=False)
    if not run.last_checkpoint.is_file():
        Console().print(f"no chain.png: {run.path} has no checkpoint yet to sample the chain from", soft_wrap=True,
                        highlight=False, markup=False)
