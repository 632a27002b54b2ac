"""Check that backends/torch_cuda/inception.py computes exactly what pytorch-fid computes.

pytorch-fid cannot be imported here (it needs torchvision, and no torchvision wheel imports beside
the CPU torch build these machines use), so this script downloads the pytorch-fid and torchvision
wheels without installing them (`pip download --no-deps`), runs their Inception source with
torchvision's package machinery stubbed out, and compares with the project's network:
- the state dict's names and shapes (so pytorch-fid's weights file loads by name), and
- pool3 features and logits on the same random weights (batch-norm statistics randomised too)
  through pytorch-fid's own InceptionV3 wrapper (resize to 299, scale to [-1, 1]).

    python benchmarks/verify_fid_inception.py [--wheels DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import types
import zipfile

import numpy as np
import torch

from backends.torch_cuda.inception import FIDInception, InceptionFeatures


def _wheel_source(folder: pathlib.Path, package: str, member: str) -> str:
    wheels = sorted(folder.glob(f"{package}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), package.replace("_", "-")],
                       check=True)
        wheels = sorted(folder.glob(f"{package}-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return wheel.read(member).decode()


def reference_modules(folder: pathlib.Path) -> types.ModuleType:
    """pytorch-fid's inception module, running on torchvision's Inception blocks from source."""
    blocks = _wheel_source(folder, "torchvision", "torchvision/models/inception.py").split("class Inception_V3_Weights")[0]
    blocks = re.sub(r"^from \.\..*$|^from \._.*$", "", blocks, flags=re.M)  # drop package-relative imports
    inception = types.ModuleType("torchvision.models.inception")
    inception._log_api_usage_once = lambda module: None
    exec(compile(blocks, "torchvision/models/inception.py", "exec"), inception.__dict__)
    torchvision = types.ModuleType("torchvision")
    torchvision.__version__ = "0.29"
    torchvision.models = types.SimpleNamespace(
        inception=inception,
        inception_v3=lambda **kw: inception.Inception3(**{k: v for k, v in kw.items() if k != "weights"}))
    sys.modules["torchvision"] = torchvision
    source = _wheel_source(folder, "pytorch_fid", "pytorch_fid/inception.py")
    source = source.replace("    state_dict = load_state_dict_from_url(FID_WEIGHTS_URL, progress=True)\n"
                            "    inception.load_state_dict(state_dict)\n", "")  # no download: weights set below
    fid = types.ModuleType("pytorch_fid_inception")
    exec(compile(source, "pytorch_fid/inception.py", "exec"), fid.__dict__)
    return fid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=pathlib.Path, default=pathlib.Path(tempfile.mkdtemp(prefix="fid-wheels-")))
    args = parser.parse_args()
    fid = reference_modules(args.wheels)
    torch.manual_seed(0)
    theirs = fid.fid_inception_v3()
    ours = FIDInception()
    their_shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    print(f"state dict: {len(their_shapes)} tensors in pytorch-fid's, {len(our_shapes)} in ours, "
          f"identical names and shapes: {their_shapes == our_shapes}")
    state = theirs.state_dict()
    rng = torch.Generator().manual_seed(1)
    for name, value in state.items():
        if name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(value.shape, generator=rng)
        elif name.endswith("running_mean"):
            state[name] = 0.1 * torch.randn(value.shape, generator=rng)
    theirs.load_state_dict(state)
    ours.load_state_dict(state)
    fid.fid_inception_v3 = lambda: theirs
    wrapper = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    with torch.no_grad():
        their_pool3 = wrapper(torch.from_numpy(images).float() / 255.0)[0].flatten(1).double()
        their_logits = their_pool3 @ theirs.fc.weight.double().T
    pool3, logits = InceptionFeatures(ours.eval(), "check", torch.device("cpu"))(images)
    print(f"pool3 features: max |difference| {np.abs(pool3 - their_pool3.numpy()).max():.3g} "
          f"(values up to {np.abs(pool3).max():.3g})")
    print(f"logits without bias: max |difference| {np.abs(logits - their_logits.numpy()).max():.3g}")


if __name__ == "__main__":
    main()
