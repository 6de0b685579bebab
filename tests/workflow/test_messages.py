"""Issue 14.5: messages a user can act on (each seen in a new user's trial)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pyama_steps.io.paths import base_name
from pyama_steps.run.config import ConfigError, load_schema, validate_config
from pyama_steps.run.samples import read_sample_sheet
from pyama_steps.validation import synth
from pyama_steps.validation.synth_io import write_dataset
from tests.conftest import REPO, SNAKEFILE, jobs_run, real_data_dir, run_snakemake

SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture(scope="module")
def easy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("easy")
    return write_dataset(out, synth.preset("easy", seed=3), name="easy")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyama_steps.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


# --------------------------------------------------------------------------
# targets before options: `--configfile x.yaml qc` reads qc as a config file
# --------------------------------------------------------------------------
# options that take values; --config / --configfile / --resources take all
# following words up to the next option (argparse nargs="+")
_MANY = {"--config", "--configfile", "--resources", "--group-components", "-C"}
_ONE = {
    "--cores",
    "-c",
    "--jobs",
    "-j",
    "--profile",
    "--workflow-profile",
    "--report",
    "-s",
    "--snakefile",
    "-d",
    "--directory",
}


def _target_after_option(command: str) -> str | None:
    """The first target named after an option in a snakemake command line."""
    words = shlex.split(command.split("#")[0].replace("\\", " "))[1:]
    seen_option = False
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-"):
            seen_option = True
            i += 1
            if word in _ONE:
                i += 1
            elif word in _MANY:
                while i < len(words) and not words[i].startswith("-"):
                    i += 1
            continue
        if seen_option:
            return word
        i += 1
    return None


def _snakemake_commands(text: str) -> list[str]:
    commands = []
    in_block = False
    for line in text.replace("\\\n", " ").splitlines():  # join continued lines
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        stripped = line.strip().lstrip("$ ").lstrip("#").strip()
        if in_block and stripped.startswith("snakemake"):
            commands.append(stripped)
    commands += re.findall(r"`(snakemake [^`]+)`", text)
    return [c for c in commands if "..." not in c and "…" not in c]


def test_examples_put_targets_before_options(easy_file: Path, tmp_path: Path) -> None:
    texts = {p.name: p.read_text(encoding="utf-8") for p in REPO.glob("*.md")}
    texts |= {p.name: p.read_text(encoding="utf-8") for p in REPO.glob("docs/*.md")}
    out = tmp_path / "cfg.yaml"
    proc = _cli("init", str(easy_file), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    texts["init output"] = proc.stdout + out.read_text(encoding="utf-8")
    bad = [
        f"{name}: {command}"
        for name, text in texts.items()
        for command in _snakemake_commands(text)
        if _target_after_option(command)
    ]
    assert bad == []
    assert "snakemake qc --cores" in texts["init output"]
    readme = texts["README.md"]
    assert "targets before the options" in readme
    assert "reads `qc` as a second config file" in readme


# --------------------------------------------------------------------------
# configuration errors: the pyama-steps message first, no traceback lines
# --------------------------------------------------------------------------
def _after_snakemake_preamble(stdout: str) -> list[str]:
    return [
        line
        for line in stdout.splitlines()
        if line.strip() and not line.startswith(("Using ", "Config file config/"))
    ]


def test_config_error_is_the_first_line(easy_file: Path, tmp_path: Path) -> None:
    config = {"input": str(easy_file), "output_dir": "out", "channels": {"pc": 7}}
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    lines = _after_snakemake_preamble(proc.stdout)
    assert lines[0].startswith(
        "pyama-steps: config key 'channels.pc' = 7 is not a channel of the file"
    ), proc.stdout
    assert "WorkflowError" not in proc.stdout
    assert 'File "' not in proc.stdout
    assert jobs_run(proc.stdout) == []


def test_yaml_syntax_error_names_the_file_and_line(
    easy_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "config").mkdir(parents=True)
    (tmp_path / "config" / "config.yaml").write_text(
        "fovs: all\nchannels: {pc: 0\n  fl: [1]\n", encoding="utf-8"
    )
    proc = run_snakemake(
        tmp_path, {"input": str(easy_file), "output_dir": "out"}, "-n", check=False
    )
    assert proc.returncode != 0
    first = _after_snakemake_preamble(proc.stdout)[0]
    assert first.startswith("pyama-steps: config/config.yaml, line 3"), proc.stdout
    assert "is not valid YAML" in first


def test_zstack_warning_has_the_prefix_and_the_sample(tmp_path: Path) -> None:
    zstack = real_data_dir() / "example-zstack.nd2"
    proc = run_snakemake(tmp_path, {"input": str(zstack), "output_dir": "out"}, "-n")
    assert (
        "pyama-steps: warning: the input has Z-stacks (11 planes): using pc: "
        "plane 0, fl: plane 0; set ingest.z_mode / ingest.z_plane to choose another"
    ) in proc.stdout.splitlines()
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(f"sample\tpath\nstack\t{zstack}\n", encoding="utf-8")
    proc = run_snakemake(
        tmp_path / "s", {"samples": str(sheet), "output_dir": "out"}, "-n"
    )
    assert (
        "pyama-steps: warning: sample 'stack': the input has Z-stacks (11 planes)"
        in proc.stdout
    )


# --------------------------------------------------------------------------
# one fluorescence channel as a scalar; sample sheets need tabs
# --------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [("LED470", ["LED470"]), (2, [2])])
def test_one_fluorescence_channel_needs_no_list(value: Any, expected: list) -> None:
    cfg = validate_config({"input": "x.nd2", "channels": {"fl": value}}, SCHEMA)
    assert cfg["channels"]["fl"] == expected


@pytest.mark.parametrize("sep", ["    ", " ", ",", ", "])
def test_sample_sheet_split_by_spaces_or_commas_asks_for_tabs(
    sep: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(f"sample{sep}path\nctrl{sep}data/ctrl.nd2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="separated by tabs") as info:
        read_sample_sheet(sheet)
    assert "line 1" in str(info.value)
    assert str(sheet) in str(info.value)


# --------------------------------------------------------------------------
# --cores above the CPU count; the workflow profile with -s from elsewhere
# --------------------------------------------------------------------------
def test_cores_above_the_cpu_count_warn(easy_file: Path, tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    proc = run_snakemake(
        tmp_path,
        {"input": str(easy_file), "output_dir": "out"},
        "-n",
        "--cores",
        str(cpus + 6),
    )
    warning = [
        ln for ln in proc.stdout.splitlines() if ln.startswith("pyama-steps: warn")
    ]
    assert warning == [
        (
            f"pyama-steps: warning: --cores {cpus + 6} is more than this machine's "
            f"{cpus} CPU(s); jobs share the CPUs and each takes longer (use --cores "
            f"{cpus} or fewer)"
        )
    ]
    quiet = run_snakemake(
        tmp_path, {"input": str(easy_file), "output_dir": "out"}, "-n"
    )
    assert "pyama-steps: warning" not in quiet.stdout


def test_snakefile_from_another_folder_keeps_the_profile(
    easy_file: Path, tmp_path: Path
) -> None:
    """`snakemake -s path/to/Snakefile` elsewhere still uses profiles/default."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(SNAKEFILE),
            "--cores",
            "2",
            "-n",
            "--config",
            f"input={easy_file}",
            "output_dir=out",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert "Using workflow specific profile" in text
    assert "pyama-steps: warning" not in text
    assert "copy_channel" in jobs_run(text)


# --------------------------------------------------------------------------
# file names with spaces and non-ASCII characters
# --------------------------------------------------------------------------
def test_init_writes_non_ascii_paths_readably(tmp_path: Path) -> None:
    import numpy as np
    import tifffile

    image = tmp_path / "Exp 3 µ-slide (GFP).ome.tiff"
    tifffile.imwrite(
        image,
        np.zeros((2, 2, 16, 16), dtype=np.uint16),
        ome=True,
        metadata={"axes": "TCYX", "Channel": {"Name": ["Phase", "GFP"]}},
    )
    out = tmp_path / "cfg.yaml"
    proc = _cli("init", str(image), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    assert "\\u" not in text
    assert f'input: "{image}"' in text
    assert yaml.safe_load(text)["input"] == str(image)
    # the output names: every character outside [A-Za-z0-9._-] becomes "_"
    assert base_name(image) == "Exp_3__-slide__GFP_"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`Exp 3 µ-slide (GFP).ome.tiff` becomes `Exp_3__-slide__GFP_`" in readme
    assert "`--config 'fovs=[0,2]'`" in readme
