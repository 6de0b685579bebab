"""Adapter of rule export_zarr: one FOV as OME-Zarr (image + labels)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.report.export import export_fov_zarr
from pyama_steps.run.steps import run_logged

i, p = snakemake.input, snakemake.params
run_logged(
    snakemake.log[0],
    export_fov_zarr,
    pc=i.pc,
    labeled=i.labeled,
    traces=i.traces,
    output=snakemake.output.zarr,
    fl_channels=p.fl,
    fl=list(i.fl),
    model=list(i.model),
    background_params=dict(p.background),
    channel_names=p.channel_names,
    pc_channel=p.pc,
    pixel_size_um=tuple(p.pixel_size_um),
    times_min=p.times_min,
)
