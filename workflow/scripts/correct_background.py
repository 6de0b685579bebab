"""Adapter of rule correct_background: one FOV x fluorescence channel (§3)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.steps import correct_background, run_logged

out = snakemake.output
run_logged(
    snakemake.log[0],
    correct_background,
    fl=snakemake.input.fl,
    seg=snakemake.input.seg,
    corrected=out.get("corrected"),
    background=out.get("background"),
    params=snakemake.params.background,
)
