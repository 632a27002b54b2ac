"""The FID Inception network (pytorch-fid's `pt_inception-2015-12-05` weights) in plain PyTorch.

FID, Inception Score and the image precision/recall are computed on this network's features,
as pytorch-fid (which the DDGAN paper used) computes them: images as uint8 scaled to [0, 1],
bilinearly resized to 299 x 299 (align_corners=False), mapped to [-1, 1], and the 2048-d
output of the final average pool ("pool3"). The weights are TensorFlow's 2015-12-05 Inception
graph ported by pytorch-fid, whose blocks differ from torchvision's Inception v3 in three
places (TensorFlow semantics): the 3x3 average pools of the A, C and first E blocks exclude
the zero padding from the average, and the last E block max-pools instead; the classifier has
1008 outputs.

Why not import the maintained library: pytorch-fid builds this network by subclassing
torchvision's Inception blocks (it imports torchvision at module level), and torch-fidelity's
package __init__ imports its dataset module, which imports torchvision; a torchvision wheel is
tied to one torch release, and none imports beside the CPU torch build these machines use.
So the architecture is written here, module for module with the attribute names of
torchvision's `Inception3` (num_classes=1008, no auxiliary head) that the weights file's state
dict uses, so pytorch-fid's file loads unchanged and by name (`load_fid_inception`). No
weights are downloaded: the file is found at --inception-weights, in torch hub's checkpoint
folder (where pytorch-fid caches it) or in the ddgan cache, else a one-line error names it.

The Inception Score uses the classifier's logits without its bias, over all 1008 classes, as
the original (TensorFlow) Inception Score code and torch-fidelity compute them.
"""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ddgan_core.errors import DDGANError
from ddgan_core.evaluation import cache_root

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}"
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"  # the name's suffix is its start
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, TensorFlow's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _average_pool_tf(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that ignores the padding, as TensorFlow's does."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_average_pool_tf(x)),
        ], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3, strided double 3x3 and max-pool branches."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 then 7x1)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_average_pool_tf(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs; `max_pool` selects the FID graph's last-block pooling."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _average_pool_tf(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(three), self.branch3x3_2b(three),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], 1)


class FIDInception(nn.Module):
    """Inception v3 as in the FID graph: (N, 3, 299, 299) in [-1, 1] -> (pool3 (N, 2048), logits (N, 1008))."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        pool3 = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return pool3, pool3 @ self.fc.weight.T  # logits without the bias (see the module docstring)


def find_weights(path: pathlib.Path | None) -> pathlib.Path:
    """The FID weights file: `path`, else torch hub's checkpoint folder, else the ddgan cache."""
    if path is not None:
        if not path.is_file():
            raise DDGANError(f"--inception-weights {path} does not exist")
        return path
    candidates = [pathlib.Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME, cache_root() / FID_WEIGHTS_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DDGANError(
        f"FID/IS need pytorch-fid's Inception weights {FID_WEIGHTS_NAME} ({FID_WEIGHTS_URL}): "
        f"pass --inception-weights FILE or put the file in {candidates[0].parent}"
    )


def load_fid_inception(path: pathlib.Path | None, device: torch.device) -> tuple[FIDInception, str]:
    """The network with pytorch-fid's weights loaded by name, and an identity string for caches.

    The identity is the file name and the first 16 hex digits of its SHA-256, so reference
    statistics computed with other weights are never reused.
    """
    weights = find_weights(path)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable or foreign pickles
        raise DDGANError(f"{weights} is not a readable PyTorch weights file ({type(exc).__name__})") from None
    network = FIDInception()
    check_state_dict(network, state, weights)
    network.load_state_dict(state, strict=False)  # num_batches_tracked may be absent; checked above
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    return network.to(device).eval(), f"{weights.name}:{digest}"


def check_state_dict(network: nn.Module, state: object, source: pathlib.Path) -> None:
    """Refuse, in one line, a file whose tensors are not this architecture's by name and shape."""
    if not isinstance(state, dict):
        raise DDGANError(f"{source} does not hold a state dict")
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    found = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked") and hasattr(v, "shape")}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        first = (missing or unexpected or wrong)[0]
        raise DDGANError(
            f"{source} is not the FID Inception's weights: {len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} mis-shaped tensors (first: {first})"
        )


class InceptionFeatures:
    """Pool3 features and logits of uint8 NCHW images (1 or 3 channels, any size), in batches.

    Grey images are repeated over three channels. Implements the `ImageFeatureExtractor`
    protocol of ddgan_core.evaluation. `input_size` is the protocol's 299; the network is fully
    convolutional down to 75, which tests use to run 16 times faster.
    """

    def __init__(self, network: FIDInception, name: str, device: torch.device, batch_size: int = 50,
                 input_size: int = INPUT_SIZE) -> None:
        self.network, self.name, self.device = network.eval(), name, device
        self.batch_size, self.input_size = batch_size, input_size

    @property
    def published_weights(self) -> bool:
        """Whether the weights are pytorch-fid's file by content (a name from `load_fid_inception`):
        only then are FID and IS comparable with published figures."""
        return self.name.rpartition(":")[2] == FID_WEIGHTS_SHA256[:16]

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DDGANError(f"Inception features need uint8 images (N, 1 or 3, H, W), got {images.dtype} {images.shape}")
        pools, logits = [], []
        for start in range(0, len(images), self.batch_size):
            batch = torch.from_numpy(np.array(images[start : start + self.batch_size])).to(self.device)
            x = batch.float() / 255.0
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
            pool3, logit = self.network(2.0 * x - 1.0)
            pools.append(pool3.double().cpu().numpy())
            logits.append(logit.double().cpu().numpy())
        return np.concatenate(pools), np.concatenate(logits)


def fid_features(weights: pathlib.Path | None, device: torch.device, batch_size: int = 50) -> InceptionFeatures:
    """The extractor `ddgan eval` uses: pytorch-fid's weights on `device`."""
    network, name = load_fid_inception(weights, device)
    return InceptionFeatures(network, name, device, batch_size)
