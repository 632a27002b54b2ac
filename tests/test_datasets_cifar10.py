"""CIFAR-10 reader against a fabricated archive in the exact official format."""

import contextlib
import hashlib
import io
import os
import urllib.error
import warnings

import numpy as np
import pytest

from ddgan_core.datasets import DatasetError, DatasetWarning, cifar10, load_dataset
from tests.dataset_fixtures import cifar_batch, rewrite_cifar_batch, write_cifar10


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        yield


def _tree(root):
    return sorted(p.relative_to(root) for p in root.rglob("*")) if root.exists() else None


def _expected_images(rows):
    """Independent decoding of the format: pixel (c, y, x) of an image is row[c*1024 + y*32 + x]."""
    n = len(rows)
    c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return np.stack([rows[i][c * 1024 + y * 32 + x] for i in range(n)]).astype(np.float32) / 127.5 - 1


@pytest.mark.parametrize("as_archive", [True, False], ids=["tar.gz", "folder"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_reads_both_forms_pixel_for_pixel(tmp_path, as_archive, split):
    written = write_cifar10(tmp_path, archive=as_archive)
    rows, labels = (written.train_rows, written.train_labels) if split == "train" else (written.test_rows, written.test_labels)
    with pytest.warns(DatasetWarning, match="MD5") if as_archive else _no_warning():
        ds = load_dataset("cifar10", tmp_path, split=split)
    assert ds.shape == (3, 32, 32) and ds.is_image and len(ds) == len(rows)
    got = ds.get(np.arange(len(ds)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _expected_images(rows))
    np.testing.assert_array_equal(ds.labels, labels)


def test_channel_order_is_rgb(tmp_path):
    write_cifar10(tmp_path, archive=False)
    red = load_dataset("cifar10", tmp_path).get(np.array([0]))[0]
    assert (red[0] == 1).all() and (red[1] == -1).all() and (red[2] == -1).all()


def test_other_resolution_is_resized(tmp_path):
    write_cifar10(tmp_path, archive=False)
    ds = load_dataset("cifar10", tmp_path, resolution=16)
    assert ds.shape == (3, 16, 16)
    red = ds.get(np.array([0]))[0]  # a constant image stays constant under resampling
    np.testing.assert_array_equal(red, np.stack([np.ones((16, 16)), -np.ones((16, 16)), -np.ones((16, 16))]))


def test_missing_folder_says_where_to_put_the_archive(tmp_path):
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz.*--download") as info:
        load_dataset("cifar10", tmp_path / "nowhere")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "nowhere").exists()


def test_truncated_archive_is_refused(tmp_path):
    write_cifar10(tmp_path)
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    before = _tree(tmp_path)
    with _no_warning(), pytest.raises(DatasetError, match="truncated or corrupt") as info:
        load_dataset("cifar10", tmp_path)  # the error alone: no MD5 warning that says the checks passed
    assert "\n" not in str(info.value)
    assert _tree(tmp_path) == before


def test_junk_archive_gives_only_the_error_and_is_not_ready(tmp_path):
    from ddgan_core.datasets import dataset_statuses

    (tmp_path / "cifar-10-python.tar.gz").write_bytes(np.random.default_rng(0).bytes(5000))
    with _no_warning(), pytest.raises(DatasetError, match=r"is truncated or corrupt \(not a gzip file\)"):
        load_dataset("cifar10", tmp_path)
    status = next(s for s in dataset_statuses(tmp_path) if s.name == "cifar10")
    assert (status.ready, status.why) == (False, "archive is truncated or corrupt (not a gzip file); download it again")


def test_empty_tar_archive_is_not_ready_and_a_readable_one_is(tmp_path):
    import tarfile

    from ddgan_core.datasets import dataset_statuses

    def cifar_status(root):
        return next((s.ready, s.why) for s in dataset_statuses(root) if s.name == "cifar10")

    (tmp_path / "empty").mkdir()
    with tarfile.open(tmp_path / "empty" / "cifar-10-python.tar.gz", "w:gz"):
        pass
    assert cifar_status(tmp_path / "empty") == (False, "archive is an empty tar archive; download it again")
    write_cifar10(tmp_path / "good")
    assert cifar_status(tmp_path / "good") == (True, "archive found (checked when loaded)")


def _bad_batches(n=4):
    rows = np.zeros((n, 3072), np.uint8)
    good = cifar_batch(rows, np.zeros(n, int), b"training batch 3 of 5")
    wrong_key = {(b"images" if k == b"data" else k): v for k, v in good.items()}
    return {
        "wrong key": (wrong_key, "no key b'data'"),
        "wrong shape": ({**good, b"data": np.zeros((n, 3071), np.uint8)}, r"shape \(N, 3072\)"),
        "wrong dtype": ({**good, b"data": rows.astype(np.float32)}, "uint8"),
        "labels out of range": ({**good, b"labels": [0, 1, 10, 2]}, r"0\.\.9"),
        "label count": ({**good, b"labels": [0, 1]}, "must be 4 integers"),
        "not a dict": ([rows], "not a dict"),
    }


@pytest.mark.parametrize("case", list(_bad_batches()))
def test_bad_batch_is_refused_naming_the_file(tmp_path, case):
    write_cifar10(tmp_path, archive=False)
    batch, message = _bad_batches()[case]
    rewrite_cifar_batch(tmp_path, "data_batch_3", batch)
    before = _tree(tmp_path)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("cifar10", tmp_path)
    assert "data_batch_3" in str(info.value) and "\n" not in str(info.value)
    assert _tree(tmp_path) == before


def test_missing_batch_is_refused(tmp_path):
    write_cifar10(tmp_path, archive=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match="lacks data_batch_5"):
        load_dataset("cifar10", tmp_path)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    write_cifar10(tmp_path, archive=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(DatasetError, match="data_batch_1 is not a CIFAR-10 batch.*os.system"):
        load_dataset("cifar10", tmp_path)


def _offline(*args, **kwargs):
    raise urllib.error.URLError("network unreachable")


def _serving(payload):
    def urlopen(url, timeout):
        assert url == cifar10.URL
        response = io.BytesIO(payload)
        response.headers = {"Content-Length": str(len(payload))}  # what the progress bar reads
        return response

    return urlopen


def test_download_offline_says_where_to_put_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _offline)
    target = tmp_path / "data"
    with pytest.raises(DatasetError, match=f"network unreachable.*{cifar10.URL}.*{target}"):
        load_dataset("cifar10", target, download=True)
    assert not target.exists()  # neither the partial download nor the folder made for it


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "source")
    payload = (tmp_path / "source" / "cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _serving(payload))
    target = tmp_path / "data"
    with pytest.raises(DatasetError, match=f"MD5 {hashlib.md5(payload).hexdigest()}, expected {cifar10.MD5}"):
        load_dataset("cifar10", target, download=True)
    assert not target.exists()  # neither the partial download nor the folder made for it


def test_a_failed_download_into_an_existing_folder_keeps_the_folder_and_what_was_there(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _serving(b"not the archive"))
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("the user's")
    with pytest.raises(DatasetError, match="expected"):
        load_dataset("cifar10", target, download=True)
    assert os.listdir(target) == ["notes.txt"]


_DOWNLOAD_IN_A_PROCESS = """
import hashlib, io, os, sys, time, warnings
from pathlib import Path
from ddgan_core.datasets import cifar10, load_dataset
payload = Path(sys.argv[2]).read_bytes()
def logged_slow_urlopen(url, timeout):
    with open(sys.argv[3], "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(1.0)  # long enough for the processes' downloads to overlap, were they not taking turns
    response = io.BytesIO(payload)
    response.headers = {}
    return response
cifar10.urllib.request.urlopen = logged_slow_urlopen
cifar10.MD5 = hashlib.md5(payload).hexdigest()
print(len(load_dataset("cifar10", Path(sys.argv[1]), download=True)))
"""


def test_processes_sharing_a_data_folder_download_once_and_all_read_the_whole_archive(tmp_path):
    """torchrun's ranks given --download: one fetches, the others wait for it and read its archive."""
    import pathlib
    import subprocess
    import sys

    written = write_cifar10(tmp_path / "source")
    log, target = tmp_path / "downloads.log", tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-c", _DOWNLOAD_IN_A_PROCESS, str(target), str(tmp_path / "source" / cifar10.ARCHIVE_NAME), str(log)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for process in processes:
        output, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
        assert int(output) == len(written.train_labels)
    assert len(log.read_text().split()) == 1 and os.listdir(target) == [cifar10.ARCHIVE_NAME]


def test_download_with_published_checksum_is_kept_and_read(tmp_path, monkeypatch):
    written = write_cifar10(tmp_path / "source")
    payload = (tmp_path / "source" / "cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _serving(payload))
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(payload).hexdigest())
    target = tmp_path / "data"
    ds = load_dataset("cifar10", target, download=True)
    np.testing.assert_array_equal(ds.labels, written.train_labels)
    assert os.listdir(target) == ["cifar-10-python.tar.gz"] and (target / "cifar-10-python.tar.gz").read_bytes() == payload


def test_fetch_downloads_only_what_is_missing_and_says_what_cannot_be_downloaded(tmp_path, monkeypatch):
    from ddgan_core.datasets import fetch_dataset

    write_cifar10(tmp_path / "source")
    payload = (tmp_path / "source" / "cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _serving(payload))
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(payload).hexdigest())
    target = tmp_path / "data"
    fetch_dataset("cifar10", target)
    assert (target / "cifar-10-python.tar.gz").read_bytes() == payload
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _offline)
    fetch_dataset("cifar10", target)  # already here: no network needed
    fetch_dataset("grid25", target)  # built in
    with pytest.raises(DatasetError, match="imagefolder cannot be downloaded by ddgan: folder does not exist"):
        fetch_dataset("imagefolder", tmp_path / "nowhere")


def test_train_download_fetches_cifar10_then_trains_on_it(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    import cli.main  # noqa: F401  (registers the commands)
    from cli.app import app

    write_cifar10(tmp_path / "source")
    payload = (tmp_path / "source" / "cifar-10-python.tar.gz").read_bytes()
    monkeypatch.setattr(cifar10.urllib.request, "urlopen", _serving(payload))
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(payload).hexdigest())
    target, run = tmp_path / "data", tmp_path / "run"
    args = ["train", "-d", "cifar10", "--data-dir", str(target), "-p", "tiny", "--iterations", "1", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--download", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert (target / "cifar-10-python.tar.gz").is_file() and (run / "checkpoints" / "last.safetensors").is_file()
    result = CliRunner().invoke(app, ["train", "--resume", "--out", str(run), "--iterations", "2", "--download"])
    assert result.exit_code != 0 and "--download is for a new run" in str(result.exception)
