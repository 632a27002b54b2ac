"""`ddgan figure`: pictures computed in closed form from the oracle (no training needed)."""

from __future__ import annotations

import pathlib

import numpy as np
import typer

from cli.app import App, app, flag_option
from ddgan_core.datasets.toy import mixture1d
from ddgan_core.errors import DDGANError
from ddgan_core.oracle import MixtureOracle
from ddgan_core.output_paths import check_new_file, replaced_atomically
from ddgan_core.rundir import check_output_file
from ddgan_core.schedule import make_schedule

figure_app = App(help="Figures computed in closed form.", no_args_is_help=True)
app.add_typer(figure_app, name="figure")

FIGURE_DATA = mixture1d()  # the 1-D data of the figure: the `mixture1d` dataset (DESIGN 7)
STEP_COUNTS = (64, 8, 4, 2)
START_TIME = 0.5  # every panel's step starts at diffusion time s = 1/2


@figure_app.command("denoising")
def denoising(
    out: pathlib.Path = typer.Option(pathlib.Path("denoising.png"), "--out", "-o", help="Output PNG file."),
    force: bool = flag_option("--force", help="Replace an existing --out file."),
) -> None:
    """A closed-form re-creation of the paper's Figure 2: the true denoising distribution grows multimodal as steps get larger."""
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise DDGANError(f"--out must end in .png, .pdf or .svg, got '{out}'")
    check_output_file(out)
    check_new_file(out, replace=force)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig = plt.figure(figsize=(15, 8), layout="constrained")
    grid = fig.add_gridspec(2, len(STEP_COUNTS))
    top = fig.add_subplot(grid[0, :])
    _plot_marginals(top, matplotlib.colormaps["viridis"])
    colours = ("tab:blue", "tab:orange", "tab:green")
    starts = None
    for column, timesteps in enumerate(STEP_COUNTS):
        ax = fig.add_subplot(grid[1, column])
        schedule = make_schedule(timesteps)
        oracle = MixtureOracle(FIGURE_DATA, schedule)
        t = int(round(START_TIME * timesteps))
        spread = float(np.sqrt(oracle.marginal(t).covariance()[0, 0]))
        starts = (-spread, 0.0, spread)  # the same in every panel: each starts at diffusion time s = 1/2
        for x_t, colour in zip(starts, colours):
            step = oracle.denoising(np.array([x_t]), t)
            mean, var = step.mean()[0], step.covariance()[0, 0]
            sd = np.sqrt(var)
            xs = np.linspace(mean - 4.5 * sd, mean + 4.5 * sd, 1500)
            ax.plot(xs, step.prob(xs), color=colour, lw=2)
            gauss = np.exp(-0.5 * (xs - mean) ** 2 / var) / np.sqrt(2 * np.pi * var)
            ax.plot(xs, gauss, color=colour, lw=1.2, ls="--")
        ax.set_title(f"T = {timesteps}: step x_{t} -> x_{t - 1} from s = {START_TIME:g}\n"
                     f"(step size {1 / timesteps:.3g} in diffusion time)", fontsize=10)
        ax.set_xlabel("x_{t-1}")
        ax.set_ylabel("density q(x_{t-1} | x_t)")
    for x_t, colour in zip(starts, colours):
        top.axvline(x_t, color=colour, lw=1, ls=":")
    handles = [Line2D([], [], color=c, lw=2, label=f"true q(x_(t-1) | x_t = {x:+.2f})") for x, c in zip(starts, colours)]
    handles.append(Line2D([], [], color="grey", lw=1.2, ls="--", label="moment-matched Gaussian (same colour)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=9,
               title=f"x_t at -1, 0 and +1 sd of q(x_t), s = {START_TIME:g} (dotted in the top panel)", title_fontsize=9)
    fig.suptitle(
        "True denoising distributions q(x_{t-1} | x_t) of a 1-D three-mode mixture, in closed form.\n"
        "Small steps: nearly Gaussian (what diffusion models assume). Large steps: multimodal, which a "
        "Gaussian step (dashed) cannot fit; DDGAN models them with a conditional GAN.",
        fontsize=11,
    )
    with replaced_atomically(out) as partial:  # an earlier file of that name survives a failed write
        fig.savefig(partial, dpi=110)
    plt.close(fig)
    typer.echo(f"wrote {out}")


def _plot_marginals(ax, cmap) -> None:
    schedule = make_schedule(8)
    oracle = MixtureOracle(FIGURE_DATA, schedule)
    xs = np.linspace(-5, 5, 2000)
    for level in range(0, 9, 2):
        ax.plot(xs, oracle.marginal(level).prob(xs), color=cmap(level / 8), lw=2,
                label=f"q(x_s), s = {1e-3 + (1 - 1e-3) * level / 8:.2f}" if level else "data q(x_0)")
    ax.set_title("The forward diffusion blurs the data into N(0, 1)")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
