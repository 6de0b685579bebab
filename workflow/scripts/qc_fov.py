"""Adapter of rule qc_fov: overlay, background and traces figures of one FOV."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.report.qc import write_fov_qc
from pyama_steps.run.steps import run_logged

i, o, p = snakemake.input, snakemake.output, snakemake.params
run_logged(
    snakemake.log[0],
    write_fov_qc,
    pc=i.pc,
    labeled=i.labeled,
    traces=i.traces,
    fl=list(i.fl),
    model=list(i.model),
    background_params=dict(p.background),
    fl_channels=p.fl,
    channel_names=p.channel_names,
    fov=p.fov,
    times_min=p.times_min,
    overlay_png=o.overlay,
    background_png=o.background,
    traces_png=o.traces,
    n_timepoints=p.n_timepoints,
)
