"""Loading by name, and the `ddgan datasets` readiness table."""

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.main import COMMAND_MODULES  # noqa: F401  (registers the commands)
from ddgan_core.datasets import DATASETS, DatasetError, dataset_statuses, load_dataset, mnist
from tests.dataset_fixtures import write_cifar10

runner = CliRunner()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'cifar100'.*cifar10, imagefolder, mnist, stackedmnist, grid25"):
        load_dataset("cifar100")


@pytest.mark.parametrize("kwargs,message", [({"split": "val"}, "unknown split 'val'"), ({"resolution": 0}, "resolution")])
def test_bad_split_or_resolution_is_refused(tmp_path, kwargs, message):
    write_cifar10(tmp_path, archive=False)
    with pytest.raises(DatasetError, match=message):
        load_dataset("cifar10", tmp_path, **kwargs)


def test_every_dataset_states_a_shape_matching_what_it_loads(tmp_path):
    write_cifar10(tmp_path, archive=False)
    statuses = {s.name: s for s in dataset_statuses(tmp_path, resolution=16)}
    assert set(statuses) == set(DATASETS)
    for name in ("cifar10", "grid25", "ring8", "mixture1d"):
        ds = load_dataset(name, tmp_path, resolution=16)
        assert statuses[name].shape == ds.shape == ds.get(np.arange(2)).shape[1:]


def test_readiness_follows_the_files(tmp_path):
    before = {s.name: s.ready for s in dataset_statuses(tmp_path)}
    assert not before["cifar10"] and not before["imagefolder"] and before["grid25"]
    write_cifar10(tmp_path)
    assert {s.name: s.ready for s in dataset_statuses(tmp_path)}["cifar10"]


def test_datasets_command_prints_every_dataset_and_its_readiness(tmp_path):
    write_cifar10(tmp_path, archive=False)
    result = runner.invoke(app, ["datasets", "--data-dir", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name in DATASETS:
        row = next(line for line in lines if f" {name} " in line)
        ready = name != "imagefolder" and (name not in ("mnist", "stackedmnist") or mnist.bundled_csv() is not None)
        expected = "yes" if ready else "no"
        assert f" {expected} (" in row, row
    assert "3 x 32 x 32" in result.stdout and "2-D points" in result.stdout


@pytest.mark.parametrize("seed", [-1, 1.5, "3"])
def test_bad_seed_is_refused(seed):
    with pytest.raises(DatasetError, match="non-negative integer"):
        load_dataset("grid25", seed=seed)


def test_datasets_command_refuses_a_bad_resolution():
    result = runner.invoke(app, ["datasets", "--resolution", "0"])
    assert result.exit_code == 2 and "resolution" in result.output
