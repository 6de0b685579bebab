"""Adapter of rule segment_phase: log-STD masks of one FOV (§2)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.steps import run_logged, segment_phase

run_logged(
    snakemake.log[0],
    segment_phase,
    pc=snakemake.input.pc,
    output=snakemake.output.seg,
    params=snakemake.params.segmentation,
)
