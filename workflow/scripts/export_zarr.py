"""Adapter of rule export_zarr: one FOV as OME-Zarr (image + labels)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.export import export_fov_zarr
from pyama_steps.steps import run_logged

i, p = snakemake.input, snakemake.params
run_logged(
    snakemake.log[0],
    export_fov_zarr,
    pc=i.pc,
    labeled=i.labeled,
    traces=i.traces,
    output=snakemake.output.zarr,
    fl_channels=p.fl,
    corrected=list(i.get("corrected", [])) or None,
    fl=list(i.get("fl", [])) or None,
    background=list(i.get("background", [])) or None,
    weight=p.weight,
    channel_names=p.channel_names,
    pc_channel=p.pc,
    pixel_size_um=tuple(p.pixel_size_um),
    times_min=p.times_min,
)
