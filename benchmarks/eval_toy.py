"""Mode coverage of a toy run (grid25 or ring8): train it with `ddgan train`, score it with `ddgan eval`.

    python benchmarks/eval_toy.py [--dataset grid25] [--iterations 300] [--run DIR] [-- extra train args]

Prints the commands, the machine and a markdown row: modes covered, high-quality share, reverse KL
(2,500 samples, the VEEGAN/PacGAN protocol).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

from eval_common import ddgan, ddgan_json, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="grid25", choices=("grid25", "ring8"))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--run", type=pathlib.Path, help="score this run instead of training one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("train_args", nargs="*", help="extra `ddgan train` arguments (after --)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    run = args.run
    if run is None:
        run = pathlib.Path(tempfile.mkdtemp(prefix=f"eval-{args.dataset}-")) / "run"
        ddgan("train", "--dataset", args.dataset, "--iterations", str(args.iterations), "--out", str(run),
              "--device", "cpu", *args.train_args)
    report = ddgan_json("eval", "--run", str(run), "--device", "cpu", "--seed", str(args.seed))
    m = report["metrics"]
    kl = "inf" if m["reverse_kl"] is None else f"{m['reverse_kl']:.3f}"
    print("| dataset | iterations | samples | modes covered | high-quality share | reverse KL |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.dataset} | {args.iterations if args.run is None else 'see run'} | {report['n']:,} | "
          f"{m['modes_covered']} / {m['n_modes']} | {m['high_quality_fraction']:.3f} | {kl} |")


if __name__ == "__main__":
    main()
