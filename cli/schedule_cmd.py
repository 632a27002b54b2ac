"""`ddgan schedule`: the coefficient tables of a schedule (DESIGN 2.1-2.2)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from cli.app import app, flag_option
from ddgan_core.kernels import coefficient_tables
from ddgan_core.schedule import make_schedule


@app.command()
def schedule(
    timesteps: int = typer.Option(4, "--timesteps", "-T", help="Number of denoising steps T."),
    beta_min: float = typer.Option(0.1, "--beta-min", help="beta_min of the VP SDE."),
    beta_max: float = typer.Option(20.0, "--beta-max", help="beta_max of the VP SDE."),
    kind: str = typer.Option("vp", "--kind", help="vp (default) or geometric."),
    as_json: bool = flag_option("--json", help="Print JSON: betas, alphas_cumprod, posterior."),
) -> None:
    """Print beta_k, alphabar_k and the posterior coefficients of a T-step schedule."""
    tables = coefficient_tables(make_schedule(timesteps, beta_min, beta_max, kind))
    if as_json:
        typer.echo(json.dumps(tables, indent=2))
        return
    post = tables["posterior"]
    table = Table(title=f"{kind} schedule, T = {timesteps}, beta in [{beta_min}, {beta_max}]")
    for column in ("k", "beta_k", "alphabar_k", "sqrt(alphabar_k)", "posterior c0", "posterior ct", "posterior var"):
        table.add_column(column, justify="right", overflow="fold")  # headers wrap, never cut short
    table.add_row("0", "", "1", "1", "", "", "")
    for k in range(1, timesteps + 1):
        abar = tables["alphas_cumprod"][k]
        table.add_row(
            str(k), f"{tables['betas'][k - 1]:.5f}", f"{abar:.5g}", f"{abar ** 0.5:.5f}",
            f"{post['coef_x0'][k - 1]:.5f}", f"{post['coef_xt'][k - 1]:.5f}", f"{post['variance'][k - 1]:.5f}",
        )
    Console().print(table)
    Console().print("The posterior row k is q(x_{k-1} | x_k, x_0) = N(c0 x_0 + ct x_k, var); "
                    "the generator for that step gets step label k - 1.")
