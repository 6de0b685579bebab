"""Adapter of rule export_ctc: one FOV's tracks as a CTC result folder."""

# `snakemake` (input, output, log) is injected by the script: directive.

from pathlib import Path

from pyama_steps.run.steps import run_logged
from pyama_steps.validation.ctc import write_ctc_result

run_logged(
    snakemake.log[0],
    write_ctc_result,
    labels=snakemake.input.labeled,
    lineage=snakemake.input.lineage,
    dest=Path(snakemake.output.tracks).parent,
)
