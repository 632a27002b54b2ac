"""The FID Inception in plain PyTorch: architecture, loading pytorch-fid's state dict by name,
features of a randomly initialised network, and the FID pipeline end to end with a cached
reference folder."""

import hashlib
import json
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from backends.torch_cuda import inception  # noqa: E402
from backends.torch_cuda.inception import (  # noqa: E402
    FEATURE_DIM,
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_SHA256,
    NUM_CLASSES,
    FIDInception,
    InceptionFeatures,
    load_fid_inception,
)
from ddgan_core.errors import DDGANError  # noqa: E402
from ddgan_core.evaluation import CACHE_ENV  # noqa: E402

# torchvision's published inception_v3 has 27,161,264 parameters (1000 classes, with the
# auxiliary head of 3,326,696); the FID graph drops the auxiliary head and has 1008 classes.
FID_INCEPTION_PARAMETERS = 27_161_264 - 3_326_696 + 8 * (FEATURE_DIM + 1)
SMALL_INPUT = 75  # the smallest input the network takes: 16 times cheaper than the protocol's 299


@pytest.fixture(scope="module")
def network() -> FIDInception:
    torch.manual_seed(0)
    return FIDInception().eval()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, network) -> pathlib.Path:
    """A random state dict saved like pytorch-fid's file: no num_batches_tracked entries."""
    path = tmp_path_factory.mktemp("weights") / FID_WEIGHTS_NAME
    state = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    return path


def test_the_architecture_has_the_fid_graphs_parameters_under_torchvisions_names(network):
    assert sum(p.numel() for p in network.parameters()) == FID_INCEPTION_PARAMETERS
    shapes = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
    assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    assert shapes["Mixed_7b.branch3x3dbl_3b.bn.running_var"] == (384,)
    assert shapes["fc.weight"] == (NUM_CLASSES, FEATURE_DIM)
    assert not any(k.startswith("AuxLogits") for k in shapes)


def test_features_are_2048_d_logits_1008_way_and_grey_images_equal_their_rgb_copy(network):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (2, 1, 16, 16), dtype=np.uint8)
    extractor = InceptionFeatures(network, "random", torch.device("cpu"), input_size=SMALL_INPUT)
    features, logits = extractor(np.concatenate([np.repeat(grey, 3, axis=1), np.repeat(grey, 3, axis=1)]))
    assert features.shape == (4, FEATURE_DIM) and logits.shape == (4, NUM_CLASSES)
    grey_features, _ = extractor(grey)
    np.testing.assert_allclose(grey_features, features[:2], rtol=1e-5, atol=1e-6)
    assert np.all(features >= 0) and np.std(features) > 0  # pool3 follows ReLUs
    with pytest.raises(DDGANError, match="uint8"):
        extractor(grey.astype(np.float32))


def test_the_weights_file_loads_by_name_and_is_identified_by_its_hash(weights_file, network):
    loaded, name = load_fid_inception(weights_file, torch.device("cpu"))
    assert name.startswith(FID_WEIGHTS_NAME + ":") and len(name.split(":")[1]) == 16
    assert name.split(":")[1] == hashlib.sha256(weights_file.read_bytes()).hexdigest()[:16]
    x = torch.rand(1, 3, 80, 80) * 2 - 1
    with torch.no_grad():
        for a, b in zip(loaded(x), network(x)):
            torch.testing.assert_close(a, b)


def test_only_pytorch_fids_file_by_content_counts_as_the_published_weights(network):
    def extractor(name: str) -> InceptionFeatures:
        return InceptionFeatures(network, name, torch.device("cpu"))

    assert extractor(f"{FID_WEIGHTS_NAME}:{FID_WEIGHTS_SHA256[:16]}").published_weights
    assert extractor(f"renamed.pth:{FID_WEIGHTS_SHA256[:16]}").published_weights  # content, not name
    assert not extractor(f"{FID_WEIGHTS_NAME}:{'0' * 16}").published_weights
    assert not extractor("random").published_weights


def test_foreign_or_missing_weights_give_one_line_errors(tmp_path, monkeypatch, network):
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in network.state_dict().items() if not k.startswith("fc.")}, partial)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    for path, message in ((partial, "2 missing"), (garbage, "not a readable"), (tmp_path / "none.pth", "does not exist")):
        with pytest.raises(DDGANError, match=message) as caught:
            load_fid_inception(path, torch.device("cpu"))
        assert "\n" not in str(caught.value)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(DDGANError, match=FID_WEIGHTS_NAME) as caught:
        load_fid_inception(None, torch.device("cpu"))
    assert "--inception-weights" in str(caught.value) and "\n" not in str(caught.value)


def _run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from cli.main import app

    monkeypatch.setattr(sys, "argv", ["ddgan", *args])
    with pytest.raises(SystemExit) as stopped:
        app()
    captured = capsys.readouterr()
    return stopped.value.code, captured.out, captured.err


def test_eval_of_samples_against_a_folder_of_the_same_images_gives_fid_zero_and_caches_the_reference(
    tmp_path, monkeypatch, capsys, weights_file
):
    from PIL import Image

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(inception, "fid_features", lambda weights, device: InceptionFeatures(
        *load_fid_inception(weights, device), device, input_size=SMALL_INPUT))
    images = np.random.default_rng(1).integers(0, 256, (4, 3, 16, 16), dtype=np.uint8)
    folder = tmp_path / "reference"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    samples = tmp_path / "samples.npz"
    np.savez(samples, samples=images.astype(np.float32) / 127.5 - 1.0)
    args = ("eval", "--samples", str(samples), "--ref", str(folder), "--inception-weights", str(weights_file),
            "--device", "cpu", "--json")
    code, out, err = _run_cli(monkeypatch, capsys, *args)
    assert code in (0, None), err
    metrics = json.loads(out)["metrics"]
    assert metrics["fid"] == pytest.approx(0.0, abs=1e-2)  # round-off of 2048-d eigendecompositions
    assert metrics["precision"] == 1.0 and metrics["recall"] == 1.0
    assert metrics["n_reference"] == 4 and metrics["inception_score"]["mean"] >= 1.0
    assert any("not comparable with published FID" in note for note in json.loads(out)["notes"])  # random weights
    cached = list((tmp_path / "cache" / "fid").glob("*.npz"))  # reused on the next run (test_eval_core)
    assert len(cached) == 1 and metrics["reference"] == str(cached[0])
