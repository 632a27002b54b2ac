"""The batch stream: epoch coverage across ranks, determinism, exact resumption, flips."""

from itertools import islice

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddgan_core.datasets import Dataset, DatasetError, ImageDataset, batch_indices, batch_stream, load_dataset


class IndexEcho(Dataset):
    """Item i is the point (i,): a batch shows exactly which indices were drawn."""

    name = "echo"
    shape = (1,)
    is_image = False

    def __init__(self, length):
        self.length = length

    def __len__(self):
        return self.length

    def get(self, indices):
        return np.asarray(indices, dtype=np.float32)[:, None]


def _indices(stream, steps):
    return [batch[:, 0].astype(int) for batch in islice(stream, steps)]


@settings(max_examples=25, deadline=None)
@given(length=st.integers(1, 60), batch=st.integers(1, 9), world=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_every_index_of_every_epoch_is_seen_once_across_ranks(length, batch, world, seed):
    ds = IndexEcho(length)
    epochs = 3
    steps = -(-epochs * length // (batch * world))  # enough steps to cover three epochs
    per_rank = [_indices(batch_stream(ds, batch, seed=seed, rank=r, world_size=world), steps) for r in range(world)]
    # the infinite sequence, in position order: step by step, rank by rank
    sequence = np.concatenate([per_rank[r][s] for s in range(steps) for r in range(world)])
    for e in range(epochs):
        assert sorted(sequence[e * length : (e + 1) * length]) == list(range(length))


def test_ranks_are_disjoint_within_an_epoch():
    ds = IndexEcho(96)
    shards = [np.concatenate(_indices(batch_stream(ds, 8, seed=1, rank=r, world_size=4), 3)) for r in range(4)]
    assert len(np.unique(np.concatenate(shards))) == 96  # 4 ranks x 3 steps x 8 = one epoch, no overlap


def test_same_seed_same_batches_other_seed_other_batches():
    ds = IndexEcho(1000)
    first, again, other = (_indices(batch_stream(ds, 16, seed=s), 5) for s in (3, 3, 4))
    assert all((a == b).all() for a, b in zip(first, again))
    assert any((a != b).any() for a, b in zip(first, other))
    assert not any((a == np.arange(16 * i, 16 * (i + 1))).all() for i, a in enumerate(first))  # shuffled


@settings(max_examples=20, deadline=None)
@given(start=st.integers(0, 40), world=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_resumed_stream_continues_exactly(start, world, seed):
    ds = IndexEcho(23)
    for rank in range(world):
        whole = _indices(batch_stream(ds, 5, seed=seed, rank=rank, world_size=world), start + 4)
        resumed = _indices(batch_stream(ds, 5, seed=seed, rank=rank, world_size=world, start_step=start), 4)
        assert all((a == b).all() for a, b in zip(whole[start:], resumed))


def test_global_batch_does_not_depend_on_the_world_size():
    for step in (0, 7, 31):
        single, single_flips = batch_indices(50, 12, seed=9, step=step)
        parts = [batch_indices(50, 3, seed=9, step=step, rank=r, world_size=4) for r in range(4)]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), single)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), single_flips)


def test_flips_mirror_images_and_only_images():
    rng = np.random.default_rng(0)
    images = ImageDataset("random", rng.integers(0, 256, size=(40, 3, 4, 4), dtype=np.uint8))
    plain = next(batch_stream(images, 40, seed=2))
    flipped = next(batch_stream(images, 40, seed=2, random_flip=True))
    mirrored = np.array([(f == p[..., ::-1]).all() for f, p in zip(flipped, plain)])
    unchanged = np.array([(f == p).all() for f, p in zip(flipped, plain)])
    assert (mirrored ^ unchanged).all()  # random images are never symmetric: one or the other
    assert 5 < mirrored.sum() < 35
    whole = list(islice(batch_stream(images, 7, seed=2, random_flip=True), 9))
    resumed = next(batch_stream(images, 7, seed=2, random_flip=True, start_step=8))
    np.testing.assert_array_equal(resumed, whole[8])  # flips resume exactly too
    points = load_dataset("grid25")
    np.testing.assert_array_equal(
        next(batch_stream(points, 64, seed=2, random_flip=True)), next(batch_stream(points, 64, seed=2))
    )


def test_image_batches_are_float32_in_unit_range():
    values = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    batch = next(batch_stream(ImageDataset("ramp", values), 1, seed=0))
    assert batch.dtype == np.float32 and batch.min() == -1 and batch.max() == 1
    np.testing.assert_allclose(batch.reshape(-1), np.arange(256) / 127.5 - 1, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 0}, "batch size"),
        ({"rank": 2, "world_size": 2}, "rank 2"),
        ({"seed": -1}, "non-negative"),
        ({"start_step": -3}, "non-negative"),
    ],
)
def test_bad_stream_arguments_are_refused(kwargs, message):
    arguments = {"batch_size": 4, "seed": 0, **kwargs}
    with pytest.raises(DatasetError, match=message):
        next(batch_stream(IndexEcho(10), **arguments))


def test_every_epoch_has_its_own_order_and_its_own_flips():
    """One epoch per step here. Reusing epoch 0's permutation would still cover every item once per
    epoch (what the coverage tests check), yet repeat the same order forever; and each item's
    flip must change between epochs, or an image would be always or never mirrored. (Flip bits
    go by position, so this holds while the order changes, whichever epoch's bits are used.)"""
    (order_0, flips_0), (order_1, flips_1) = (batch_indices(50, 50, seed=4, step=s) for s in (0, 1))
    assert sorted(order_0) == sorted(order_1) == list(range(50)) and not np.array_equal(order_0, order_1)
    by_item_0, by_item_1 = np.empty(50, bool), np.empty(50, bool)
    by_item_0[order_0], by_item_1[order_1] = flips_0, flips_1
    assert 10 < np.sum(by_item_0 != by_item_1) < 40  # independent bits: about half the items change
    seed_1_epoch_0 = batch_indices(50, 50, seed=5, step=0)[0]
    assert not np.array_equal(order_1, seed_1_epoch_0)  # (seed, epoch) pairs do not collide as seed + epoch would
