"""The lowest Snakemake that pyproject.toml allows gives the same outputs.

pyproject.toml pins ``snakemake>=9.0,<10``; every other test runs the newest
9.x installed. This test builds (once, cached) a virtual environment with the
lowest allowed Snakemake, runs the workflow with this checkout's code in it
(``src`` on ``PYTHONPATH``) and with the Snakemake of this environment on the
same tiny input, and compares the outputs byte for byte: only the Snakemake
version recorded in ``processing_results.yaml`` (and so the manifest's size and
CRC-32 in the aggregate job's output record) may differ. Logs, ``benchmark:``
files and ``.snakemake`` are not compared.

The old environment borrows this one's packages: a ``.pth`` file puts this
environment's site-packages on its path, after its own. pip, asked for the
lowest Snakemake and this package's other dependencies at the versions
installed here, then installs only what must differ (Snakemake itself and the
few packages it pins otherwise: snakemake-interface packages, PuLP, wrapt...)
into the new environment's own site-packages, which come first; the test
checks that it imports that Snakemake. The environment is cached in
``$PYAMA_STEPS_CACHE`` (default ``~/.cache/pyama-steps``), named after a hash
of this Python, what is installed here and the requirements; building it
takes seconds (the old full install took ~2 min) and needs the package index.
Without it the test skips, unless ``CI`` is set: CI builds it and runs the test.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import site
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, run_snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

#: What the two runs may differ in (Snakemake's own files and timings).
SKIP = {"logs", "benchmarks", ".snakemake"}
#: Files that record the Snakemake version (the manifest) or its checksum.
VERSIONED = {
    "processing_results.yaml",
    "records/aggregate_results/aggregate_results.json",
}
#: Packages whose version the manifest records (manifest._SOFTWARE): pinned to
#: this environment's versions in the old one, like the direct dependencies.
RECORDED = ("bioio-base",)


def _lowest_snakemake() -> str:
    """The lower bound of the ``snakemake`` requirement in pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        req = Requirement(line)
        if req.name == "snakemake":
            lows = [s.version for s in req.specifier if s.operator == ">="]
            assert len(lows) == 1, f"no single lower bound in {line!r}"
            return lows[0]
    raise AssertionError("pyproject.toml has no snakemake requirement")


def _requirements(snakemake: str) -> list[str]:
    """The old environment: the lowest Snakemake, every other dependency as here."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [Requirement(line).name for line in project["dependencies"]]
    pins = [
        f"{name}=={metadata.version(name)}"
        for name in [*names, *RECORDED]
        if name != "snakemake"
    ]
    return [f"snakemake=={snakemake}", *sorted(pins)]


def _site_packages(python: Path) -> Path:
    """The site-packages folder of the environment of `python`."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _borrowed() -> list[str]:
    """This environment's package folders (``site``), in their order."""
    folders = site.getsitepackages()
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return [f for f in dict.fromkeys(folders) if Path(f).is_dir()]


def _old_python(requirements: list[str]) -> Path:
    """Python of the cached environment with `requirements`, built when missing."""
    cache = Path(
        os.environ.get("PYAMA_STEPS_CACHE", Path.home() / ".cache" / "pyama-steps")
    )
    borrowed = _borrowed()
    # everything installed here: the environment borrows it
    here = sorted(
        {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()}
    )
    key = hashlib.sha256(
        "\n".join([sys.version, *borrowed, *here, *requirements]).encode()
    ).hexdigest()[:12]
    venv = cache / f"venv-{requirements[0].replace('==', '-')}-{key}"
    python = venv / "bin" / "python"
    if (venv / "complete").exists():
        return python
    tmp = venv.with_name(f"{venv.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # built under another name and renamed when complete: an interrupted build
    # is never taken for a complete one (`python -m ...` works after the rename)
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    # this environment's packages after the new one's own: pip installs only
    # the requirements they do not satisfy, and those come first
    own = _site_packages(tmp / "bin" / "python")
    (own / "_pyama_steps_borrowed.pth").write_text("".join(f"{f}\n" for f in borrowed))
    pip = subprocess.run(
        [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if pip.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        message = f"cannot build {venv.name}: pip says\n{pip.stderr[-3000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    (tmp / "complete").write_text("\n".join(requirements) + "\n")
    try:
        tmp.rename(venv)
    except OSError:  # built meanwhile by another run: use that one
        shutil.rmtree(tmp, ignore_errors=True)
    return python


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not SKIP.intersection(p.relative_to(root).parts)
    }


def test_lowest_snakemake_gives_the_same_outputs(tmp_path: Path) -> None:
    lowest = _lowest_snakemake()
    python = _old_python(_requirements(lowest))
    image = write_dataset(tmp_path / "data", synth.preset("easy", seed=3), name="easy")
    config = {"input": str(image), "output_dir": "out"}

    new = run_snakemake(tmp_path / "new", config)
    # this checkout's code, with the old environment's Snakemake
    src = {"PYTHONPATH": str(REPO / "src")}
    old = run_snakemake(tmp_path / "old", config, python=python, env=src)

    # the old environment's own Snakemake, not this one's (on its path too)
    version, where = subprocess.run(
        [
            str(python),
            "-c",
            "import snakemake; print(snakemake.__version__); print(snakemake.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert version.startswith(lowest), version  # 9.0 -> 9.0.0
    assert Path(where).is_relative_to(_site_packages(python)), where
    assert "FOVs: 2 ok" in new.stdout
    assert "FOVs: 2 ok" in old.stdout

    a, b = tmp_path / "new" / "out", tmp_path / "old" / "out"
    names = _files(a)
    assert names == _files(b)
    assert "processing_results.yaml" in names
    differ = sorted(
        name
        for name in names - VERSIONED
        if not filecmp.cmp(a / name, b / name, shallow=False)
    )
    assert differ == []
    # the manifests differ in the recorded Snakemake version only
    new_manifest = (a / "processing_results.yaml").read_text()
    old_manifest = (b / "processing_results.yaml").read_text()
    current = metadata.version("snakemake")
    assert f"snakemake: {current}" in new_manifest
    assert f"snakemake: {version}" in old_manifest
    assert (
        old_manifest.replace(f"snakemake: {version}", f"snakemake: {current}")
        == new_manifest
    )
