"""Images per second of one PyTorch generator forward pass on the CPU (issue 4, item 7).

    python benchmarks/bench_torch_generator_cpu.py [--preset cifar10] [--batch-size 8] [--profile]

Builds the preset's generator with its published initialisation, then times G(x_t, t, z) under
torch.no_grad() after warm-up calls and prints the median over repeated calls. It also prints the
multiply-accumulates of the convolution and linear layers per call and the rate they imply, which
shows how close the forward pass is to being bound by convolution arithmetic. `--profile` adds
torch.profiler's table of the operators that take the most time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from backends.torch_cuda.networks import build_generator, count_parameters
from ddgan_core.config import preset


def multiply_accumulates(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of all Conv2d and Linear layers in one forward call on `inputs`."""
    total = 0

    def hook(module: nn.Module, _args: object, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * module.in_channels // module.groups * kh * kw
        else:
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(*inputs)
    for handle in handles:
        handle.remove()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cifar10")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true", help="print the operators that take the most time")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = preset(args.preset)
    g = cfg.generator
    generator = build_generator(cfg).eval()
    x = torch.randn(args.batch_size, g.channels, g.image_size, g.image_size)
    t = torch.randint(0, cfg.diffusion.timesteps, (args.batch_size,))
    z = torch.randn(args.batch_size, g.nz)

    seconds = []
    with torch.no_grad():
        for _ in range(args.warmup):
            generator(x, t, z)
        for _ in range(args.repeats):
            start = time.perf_counter()
            generator(x, t, z)
            seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    macs = multiply_accumulates(generator, x, t, z)

    print(f"torch {torch.__version__}, {args.threads} threads, preset {args.preset}, "
          f"generator {count_parameters(generator):,} parameters, batch {args.batch_size}")
    print(f"forward: median {median:.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}, {args.repeats} calls)")
    print(f"images/s: {args.batch_size / median:.2f}")
    print(f"conv+linear: {macs / 1e9:.1f} GMAC per call, {2 * macs / median / 1e9:.0f} GFLOP/s achieved")

    if args.profile:
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
            generator(x, t, z)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
