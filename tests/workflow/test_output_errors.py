"""Output folder not writable and disk full (real small file systems, as root)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import jobs_run, run_snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outerr")
    params = synth.preset("easy", seed=2, frame_sizes=((256, 256), (256, 256)))
    return write_dataset(out, params, name="outerr")


def _mount(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs: {done.stderr.decode()}")
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "small", "size=1200k")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "ro", "ro,size=1m")


def test_read_only_output_dir_stops_before_any_job(
    image: Path, read_only: Path, tmp_path: Path
) -> None:
    config = {"input": str(image), "output_dir": str(read_only / "out")}
    proc = run_snakemake(tmp_path / "work", config, check=False)
    assert proc.returncode != 0
    assert f"output_dir '{read_only / 'out'}' is not writable" in proc.stdout
    assert "choose another output_dir" in proc.stdout
    assert jobs_run(proc.stdout) == []


def test_disk_full_fails_clearly_and_leaves_nothing_complete(
    image: Path, full_disk: Path, tmp_path: Path
) -> None:
    out = full_disk / "out"
    config = {"input": str(image), "output_dir": str(out)}
    proc = run_snakemake(tmp_path / "work", config, check=False)
    assert proc.returncode != 0
    logs = "\n".join(p.read_text() for p in out.rglob("*.log") if p.stat().st_size)
    assert "no space left on the device" in logs + proc.stdout
    # every stack that exists under its final name is complete
    for stack in out.rglob("*.npy"):
        import numpy as np

        arr = np.load(stack, mmap_mode="r")
        assert stack.stat().st_size >= arr.nbytes
    assert not list(out.rglob("*.tmp-*"))
    manifest = out / "processing_results.yaml"
    if manifest.exists():  # written by the onerror hook when it fitted
        status = yaml.safe_load(manifest.read_text())["fov_status"]
        assert any(s["status"] != "ok" for s in status.values())


def test_job_record_on_a_full_disk_names_the_device(full_disk: Path) -> None:
    # The record of a job's outputs (pyama-steps verify) is written after the
    # step: a full disk there is reported like a step's own (failed in CI,
    # where it came through as a bare "[Errno 28] No space left on device").
    from pyama_steps.io.integrity import record_outputs

    out = full_disk / "out"
    log = out / "logs" / "segment_phase" / "fov_000.log"
    log.parent.mkdir(parents=True)
    log.write_text("00:00:00 INFO done\n")
    stack = out / "fov_000" / "seg.npy"
    stack.parent.mkdir()
    stack.write_bytes(bytes(1000))
    fd = os.open(full_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(4096))
    except OSError:
        pass
    finally:
        os.close(fd)
    with pytest.raises(OSError, match=r"no space left on the device of .*/small/out"):
        record_outputs(log_path=str(log), files=[str(stack)])
    assert not list(out.rglob("*.tmp-*"))
