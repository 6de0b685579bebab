"""Adapter of rule extract_traces: the traces CSV of one FOV (§5)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.steps import extract_traces, run_logged

i, p = snakemake.input, snakemake.params
run_logged(
    snakemake.log[0],
    extract_traces,
    labeled=i.labeled,
    lineage=i.lineage,
    output=snakemake.output.traces,
    fov=p.fov,
    pc_channel=p.pc,
    fl_channels=p.fl,
    fl=list(i.fl),
    corrected=list(i.get("corrected", [])) or None,
    background=list(i.get("background", [])) or None,
    seg=i.get("seg"),
    times_min=p.times_min,
    params=p.extraction,
    background_params=p.background,
)
