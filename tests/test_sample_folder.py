"""Samples on disk beyond memory: a folder of PNGs written batch by batch and read back exactly,
batches gathered into one array, and the up-front refusal of outputs that cannot be held."""

import json
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from cli.train_cmd import named_options, resolve_config
from ddgan_core.errors import DDGANError
from ddgan_core.evaluation import load_samples_file, samples_file_dataset, samples_file_steps, to_uint8_nchw
from ddgan_core.pictures import GRID_MAX_PIXELS, grid_side, image_grid
from ddgan_core.sample_folder import RECORD_NAME, read_sample_folder, write_sample_folder
from ddgan_core.sample_output import check_fits, check_output_path, write_sample_stream
from ddgan_core.sampling import gather_batches


def _images(n: int, channels: int = 3, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.1, 1.1, (n, channels, size, size)).astype(np.float32)


def _in_batches(samples: np.ndarray, size: int):
    return (samples[start : start + size] for start in range(0, len(samples), size))


@pytest.mark.parametrize("channels", [3, 1])
def test_a_sample_folder_holds_each_image_as_a_png_and_reads_back_pixel_for_pixel(tmp_path, channels):
    samples = _images(7, channels)
    out = write_sample_folder(tmp_path / "samples", _in_batches(samples, 3), 7)
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}.png" for i in range(7)] + [RECORD_NAME]
    with Image.open(out / "000004.png") as fifth:
        assert fifth.mode == ("RGB" if channels == 3 else "L") and fifth.size == (8, 8)
    expected = to_uint8_nchw(samples)  # eval's pixels of the same samples held in memory
    np.testing.assert_array_equal(read_sample_folder(out), expected)
    np.testing.assert_array_equal(load_samples_file(out), expected)  # what `eval --samples DIR` scores
    assert samples_file_dataset(out) is None and samples_file_steps(out) is None  # no record of how they were drawn
    assert [p.name for p in tmp_path.iterdir()] == ["samples"]  # no temporary folder left beside it


def test_file_names_widen_past_a_million_samples_so_they_still_sort_in_order(tmp_path, monkeypatch):
    names = []
    monkeypatch.setattr(Image.Image, "save", lambda self, path, *args, **kwargs: names.append(path.name))
    one = np.zeros((1, 3, 2, 2), np.float32)
    with pytest.raises(DDGANError, match="expected 1000000 samples, the sampler gave 1"):
        write_sample_folder(tmp_path / "a", iter([one]), 1_000_000)
    with pytest.raises(DDGANError, match="expected 1000001 samples, the sampler gave 1"):
        write_sample_folder(tmp_path / "b", iter([one]), 1_000_001)
    assert names == ["000000.png", "0000000.png"]  # seven digits once index 1,000,000 exists


def test_an_interrupted_or_short_folder_leaves_nothing_under_its_name(tmp_path):
    def interrupted():
        yield _images(3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sample_folder(tmp_path / "a", interrupted(), 6)
    with pytest.raises(DDGANError, match="expected 6 samples, the sampler gave 3"):
        write_sample_folder(tmp_path / "b", iter([_images(3)]), 6)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()  # an existing empty folder is filled, and kept if the sampling fails
    with pytest.raises(KeyboardInterrupt):
        write_sample_folder(tmp_path / "empty", interrupted(), 6)
    assert [p.name for p in tmp_path.iterdir()] == ["empty"] and list((tmp_path / "empty").iterdir()) == []
    write_sample_folder(tmp_path / "empty", iter([_images(2)]), 2)
    assert len(list((tmp_path / "empty").iterdir())) == 3  # two images and the record


def test_a_folder_that_holds_files_or_is_a_file_is_refused_before_sampling(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.png").write_bytes(b"mine")
    (tmp_path / "file").write_bytes(b"mine")
    for out, message in ((tmp_path / "full", "holds files already"), (tmp_path / "file" / "x", "is a file")):
        with pytest.raises(DDGANError, match=message):
            check_output_path(out)
        with pytest.raises(DDGANError, match=message):
            write_sample_folder(out, iter([_images(1)]), 1)
    assert (tmp_path / "full" / "keep.png").read_bytes() == b"mine" and (tmp_path / "file").read_bytes() == b"mine"
    check_output_path(tmp_path / "new")  # a folder to create, a .png and an .npz are all outputs
    check_output_path(tmp_path / "x.png")
    check_output_path(tmp_path / "x.npz")
    with pytest.raises(DDGANError, match="or name a folder"):
        check_output_path(tmp_path / "x.jpg")


def test_reading_a_folder_refuses_mixed_sizes_and_unreadable_files_in_one_line(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "b.png")
    with pytest.raises(DDGANError, match=r"b.png is 8x6 RGB but a.png is 8x8 RGB"):
        read_sample_folder(tmp_path)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(DDGANError, match="b.png is not a readable image") as refused:
        read_sample_folder(tmp_path)
    assert "\n" not in str(refused.value)
    (tmp_path / "none").mkdir()
    with pytest.raises(DDGANError, match="no images"):
        read_sample_folder(tmp_path / "none")


def test_a_run_directory_or_a_folder_of_runs_is_refused_as_samples(tmp_path):
    from ddgan_core.config import preset
    from ddgan_core.rundir import RunDir

    run = RunDir.create(tmp_path / "runs" / "grid", preset("toy2d"), "torch", {})
    (run.samples / "step-0000001.png").write_bytes(b"")  # a training preview
    for folder, what in ((run.path, "is a run directory"), (run.path.parent, "holds run directories (grid)")):
        with pytest.raises(DDGANError, match=rf"^{folder} {re.escape(what)}, not samples: score a run with --run {run.path}, "):
            read_sample_folder(folder)


def test_gather_batches_copies_batches_into_one_array_in_order():
    samples = _images(7)
    gathered = gather_batches(_in_batches(samples, 3), 7)
    assert gathered.dtype == np.float32
    np.testing.assert_array_equal(gathered, samples)
    np.testing.assert_array_equal(gather_batches(_in_batches(samples, 3), 7, np.uint8, to_uint8_nchw), to_uint8_nchw(samples))
    with pytest.raises(DDGANError, match="expected 6 samples, the sampler gave more"):
        gather_batches(_in_batches(samples, 3), 6)
    with pytest.raises(DDGANError, match="expected 8 samples, the sampler gave 7"):
        gather_batches(_in_batches(samples, 3), 8)


def test_grid_side_is_the_width_image_grid_draws():
    for n, size in ((1, 8), (7, 8), (16, 5), (17, 5)):
        assert grid_side(n, (size, size)) == image_grid(np.zeros((n, 3, size, size), np.float32)).shape[1]


def test_outputs_that_cannot_be_held_are_refused_before_sampling_with_what_to_do_instead(tmp_path):
    png, npz = tmp_path / "x.png", tmp_path / "x.npz"
    cifar = (3, 32, 32)  # 12,288 bytes per sample as float32
    check_fits(npz, 50_000, cifar, available=50_000 * 12_288)
    with pytest.raises(DDGANError) as refused:
        check_fits(npz, 50_000, (3, 256, 256), available=20 * 2**30)
    assert str(refused.value) == ("50,000 samples of shape (3, 256, 256) are 36.6 GiB as float32, more than the 20.0 GiB "
                                  "of memory available: write them to a folder of PNGs (--out DIR, an image each)")
    with pytest.raises(DDGANError, match=r"ask for fewer \(-n\)"):
        check_fits(npz, 10**9, (2,), available=2**30)  # points: a folder of PNGs is no way out
    check_fits(npz, 10**9, (2,), available=None)  # where the system does not say, nothing is refused
    # one picture at most GRID_MAX_PIXELS wide: 63 x 63 images of 256 px fit, one more row does not
    assert grid_side(63 * 63, (256, 256)) <= GRID_MAX_PIXELS < grid_side(63 * 63 + 1, (256, 256))
    check_fits(png, 63 * 63, (3, 256, 256), available=None)
    with pytest.raises(DDGANError, match="a grid of 3,970 samples at 256x256 would be 16,514 pixels wide"):
        check_fits(png, 63 * 63 + 1, (3, 256, 256), available=None)
    check_fits(npz, 63 * 63 + 1, (3, 256, 256), available=None)  # the same samples as arrays are fine


def test_write_sample_stream_sends_images_to_a_folder_and_refuses_points_there(tmp_path):
    images = _images(5)
    tiny = resolve_config("tiny", "cifar10", named_options("cifar10", None, None, None, None, None, None))
    write_sample_stream(tmp_path / "dir", _in_batches(images, 2), 5, tiny)
    np.testing.assert_array_equal(read_sample_folder(tmp_path / "dir"), to_uint8_nchw(images))
    write_sample_stream(tmp_path / "x.npz", _in_batches(images, 2), 5, tiny, available=10**9)
    with np.load(tmp_path / "x.npz") as stored:
        np.testing.assert_array_equal(stored["samples"], images)
    grid = resolve_config(None, "grid25", named_options("grid25", None, None, None, None, None, None))
    with pytest.raises(DDGANError, match="grid25 samples are points: write a .png plot or an .npz"):
        write_sample_stream(tmp_path / "points", iter([np.zeros((4, 2), np.float32)]), 4, grid)
    assert not (tmp_path / "points").exists()
    with pytest.raises(DDGANError, match="more than the 0.0 GiB"):
        write_sample_stream(tmp_path / "y.npz", _in_batches(images, 2), 5, tiny, available=1)
    assert not (tmp_path / "y.npz").exists()


def test_a_folder_records_how_its_samples_were_drawn_and_reading_holds_it_to_their_count(tmp_path):
    tiny = resolve_config("tiny", "cifar10", named_options("cifar10", None, None, None, None, None, None))
    out = write_sample_stream(tmp_path / "dir", _in_batches(_images(5), 2), 5, tiny, steps=1, seed=9)
    assert json.loads((out / RECORD_NAME).read_text()) == {
        "dataset": "cifar10", "timesteps": tiny.diffusion.timesteps, "steps": 1, "seed": 9, "count": 5}
    assert (samples_file_dataset(out), samples_file_steps(out)) == ("cifar10", 1)  # what eval reports and scores against
    write_sample_stream(tmp_path / "x.npz", _in_batches(_images(5), 2), 5, tiny, steps=1, seed=9, available=10**9)
    with np.load(tmp_path / "x.npz") as stored:  # the .npz records the same
        assert {k: stored[k].item() for k in ("dataset", "timesteps", "steps", "seed")} == {
            "dataset": "cifar10", "timesteps": tiny.diffusion.timesteps, "steps": 1, "seed": 9}
    (out / "000003.png").unlink()  # an FID of 4 images is not the 5 asked for
    with pytest.raises(DDGANError, match=f"holds 4 images but `ddgan sample` wrote 5 there \\({RECORD_NAME}\\)"):
        read_sample_folder(out)
    (out / RECORD_NAME).write_text("{not json")
    with pytest.raises(DDGANError, match="is not a readable record of `ddgan sample`") as refused:
        samples_file_dataset(out)
    assert "\n" not in str(refused.value)
    (out / RECORD_NAME).unlink()  # without a record: anyone's folder of images
    assert len(read_sample_folder(out)) == 4 and samples_file_dataset(out) is None


def test_a_failed_write_leaves_the_earlier_file_of_that_name_whole(tmp_path, monkeypatch):
    from ddgan_core import sample_output

    tiny = resolve_config("tiny", "cifar10", named_options("cifar10", None, None, None, None, None, None))
    for name in ("x.npz", "x.png"):
        out = tmp_path / name
        sample_output.write_samples(out, _images(4), tiny)
        before = out.read_bytes()

        def full_disk(*args, **kwargs):
            pathlib.Path(args[0] if name == "x.npz" else args[1]).write_bytes(b"half")
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(sample_output.np, "savez_compressed", full_disk)
        monkeypatch.setattr(sample_output, "save_image_grid", full_disk)
        with pytest.raises(OSError):
            sample_output.write_samples(out, _images(4, seed=1), tiny)
        assert out.read_bytes() == before
        monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz", "x.png"]
