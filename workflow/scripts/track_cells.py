"""Adapter of rule track_cells: labels and lineage of one FOV (§4)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.steps import run_logged, track_cells

run_logged(
    snakemake.log[0],
    track_cells,
    seg=snakemake.input.seg,
    labeled=snakemake.output.labeled,
    lineage=snakemake.output.lineage,
    fov=snakemake.params.fov,
    params=snakemake.params.tracking,
)
