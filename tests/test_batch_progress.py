"""Batches of long non-training work: exact ranges, and a progress bar on stderr only when asked."""

import pytest

from ddgan_core.batch_progress import batch_ranges
from ddgan_core.errors import DDGANError


@pytest.mark.parametrize(("total", "size", "expected"), [
    (7, 3, [(0, 3), (3, 3), (6, 1)]),
    (6, 3, [(0, 3), (3, 3)]),
    (2, 5, [(0, 2)]),
    (0, 4, []),
])
def test_ranges_cover_every_item_once_in_order(total, size, expected):
    assert list(batch_ranges(total, size)) == expected
    assert list(batch_ranges(total, size, "sample")) == expected


def test_the_bar_goes_to_stderr_and_only_for_labelled_work_of_several_batches(capsys):
    list(batch_ranges(5, 2, "sample"))
    shown = capsys.readouterr()
    assert "sample" in shown.err and "5/5" in shown.err and shown.out == ""  # stdout stays clean for --json
    list(batch_ranges(5, 2))  # inside training: quiet
    list(batch_ranges(2, 5, "sample"))  # one batch: over before a bar could say anything
    assert capsys.readouterr() == ("", "")


def test_a_non_positive_batch_size_is_refused():
    with pytest.raises(DDGANError, match="batch size must be positive"):
        list(batch_ranges(3, 0))
