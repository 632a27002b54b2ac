"""Checkpoint files (DESIGN 6): a round trip, and one-line refusals of files that are not one."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from ddgan_core.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from ddgan_core.config import preset

WEIGHTS = {"generator_ema.w": np.arange(6, dtype=np.float32).reshape(2, 3)}
CONFIG = preset("tiny").to_json()


def test_a_checkpoint_round_trips_its_tensors_step_config_and_extra(tmp_path):
    path = save_checkpoint(tmp_path / "last.safetensors", WEIGHTS, step=7, config=preset("tiny"), extra={"optimizer_step": 7})
    loaded = load_checkpoint(path)
    assert loaded.step == 7 and loaded.config == preset("tiny") and loaded.extra == {"optimizer_step": 7}
    np.testing.assert_array_equal(loaded.section("generator_ema")["w"], WEIGHTS["generator_ema.w"])


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"format": "other-v9", "step": "1", "config": CONFIG}, f"not a ddgan checkpoint (format 'other-v9', expected '{FORMAT}')"),
        ({"format": FORMAT, "step": "1"}, "a ddgan checkpoint without its config metadata"),
        ({"format": FORMAT}, "without its step and config metadata"),
        ({"format": FORMAT, "step": "abc", "config": CONFIG}, "its step 'abc' is not an integer"),
        ({"format": FORMAT, "step": "1", "config": "[1, 2]"}, "its configuration cannot be read"),
        ({"format": FORMAT, "step": "1", "config": "{"}, "its configuration cannot be read"),
    ],
)
def test_hand_edited_metadata_is_refused_in_one_line(tmp_path, metadata, message):
    path = tmp_path / "edited.safetensors"
    save_file(WEIGHTS, str(path), metadata=metadata)
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_damage_that_keeps_the_size_is_refused_with_the_runs_newest_periodic_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": preset("toy2d").to_dict()}))
    tensors = {"generator_ema.w": np.linspace(-1, 1, 4096, dtype=np.float32), "generator_ema.b": np.zeros(3, np.float32)}
    periodic = save_checkpoint(run / "checkpoints/step-0000002.safetensors", tensors, step=2, config=preset("toy2d"))
    last = save_checkpoint(run / "checkpoints/last.safetensors", tensors, step=2, config=preset("toy2d"))
    data = bytearray(last.read_bytes())
    data[-100] ^= 0x40  # one bit of one float, in w's data at the end of the file
    last.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(last)
    assert ("not a readable checkpoint (corrupt: 1 of 2 tensors fail their CRC-32 check, generator_ema.w first); "
            f"the run's newest periodic checkpoint is {periodic}") in str(refused.value)
    assert load_checkpoint(periodic).step == 2


def test_a_checkpoint_written_before_checksums_still_loads(tmp_path):
    path = tmp_path / "old.safetensors"
    save_file(WEIGHTS, str(path), metadata={"format": FORMAT, "step": "3", "config": CONFIG})
    assert load_checkpoint(path).step == 3


def test_a_folder_or_a_missing_file_is_named_as_such(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder: name a .safetensors file"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_a_save_interrupted_midway_leaves_the_last_checkpoint_whole_and_no_partial_file(tmp_path, monkeypatch):
    import safetensors.numpy

    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"w": np.ones(3, dtype=np.float32)}, step=1, config=preset("toy2d"))
    before = path.read_bytes()

    def interrupted_write(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM's exception, in the middle of the write

    monkeypatch.setattr(safetensors.numpy, "save_file", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.zeros(3, dtype=np.float32)}, step=2, config=preset("toy2d"))
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"] and path.read_bytes() == before
    assert load_checkpoint(path).step == 1
