"""The report of scripts/gpu_check.sh, from rows as its sections write them: the tables and the
verdicts on issue 7's targets, even when a killed section left a line cut short."""

import json

import pytest

pytest.importorskip("torch")
from benchmarks import gpu_check  # noqa: E402

FLOPS = 56.4e9  # per image at T = 4


def _sample(path: str, images_per_s: float, batch: int = 1000) -> dict:
    return {"section": "sample", "name": f"sample {path}", "status": "ok", "kind": "sample", "T": 4, "batch": batch,
            "path": path, "build_s": 1.0, "images_per_s": images_per_s, "seconds_per_100": 100 / images_per_s,
            "achieved_flops": images_per_s * FLOPS, "fraction_of_peak": images_per_s * FLOPS / 989.4e12,
            "peak_memory_bytes": 2**29, "peak_reserved_bytes": 2**30}


def _train(throughput: float, single_steps: float) -> dict:
    return {"section": "train", "name": "train fast", "status": "ok", "kind": "train", "path": "bf16 compiled (fast path)",
            "compile": True, "warmup_s": 100.0, "images_per_s_mean": single_steps, "images_per_s_throughput": throughput,
            "images_per_s": 3300.0, "seconds_per_batch_mean": 256 / single_steps, "sync_free_step": "yes",
            "peak_memory_bytes": 2**30, "peak_reserved_bytes": 2**31}


def _report(tmp_path, rows: list[dict], tail: str = "") -> str:
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    (tmp_path / "sections.jsonl").write_text('{"section": "train", "rc": 124, "seconds": 195}\n')
    gpu_check.report(tmp_path / "rows.jsonl", tmp_path / "sections.jsonl", tmp_path / "out.json", tmp_path / "out.md")
    assert len(json.loads((tmp_path / "out.json").read_text())["rows"]) == len(rows)
    return (tmp_path / "out.md").read_text()


def test_targets_met_are_said_met_with_their_figures(tmp_path):
    report = _report(tmp_path, [_sample("eager fp32", 1500.0), _sample("bf16 compiled + graph", 6000.0),
                                _train(3100.0, 2900.0)], tail='{"section": "profile", "na')  # killed mid-line
    assert "sampling T = 4 >= 5,000 images/s: met (6,000, bf16 compiled + graph, batch 1000)" in report
    assert ">= 3x eager fp32 at that batch: met (4.00x)" in report
    assert "training >= 3,000 images/s at batch 256: met (3,100 back to back" in report  # the throughput is judged
    assert "| 4 | 1000 | bf16 compiled + graph | 6,000 | 0.0167 | 4.00 | 338 | 34.2% | 512 / 1,024 MiB | 1.0 |" in report
    assert "| train | 124 (time limit) | 195 |" in report


def test_targets_missed_are_said_missed(tmp_path):
    report = _report(tmp_path, [_sample("eager fp32", 2000.0), _sample("bf16 compiled + graph", 4900.0),
                                _train(2900.0, 3100.0),
                                {"section": "sample", "name": "sample T=2", "status": "error", "error": "OutOfMemoryError: x"}])
    assert "5,000 images/s: missed (4,900" in report and "eager fp32 at that batch: missed (2.45x)" in report
    assert "batch 256: missed (2,900 back to back" in report
    assert "## Errors" in report and "- sample T=2: OutOfMemoryError: x" in report
