"""Adapter of rule copy_channel: one FOV x channel to a uint16 .npy (§1.6)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.steps import copy_channel, run_logged

p = snakemake.params
run_logged(
    snakemake.log[0],
    copy_channel,
    input_path=snakemake.input.raw,
    output=snakemake.output[0],
    fov=p.fov,
    channel=p.channel,
    z_mode=p.z_mode,
    z_plane=p.z_plane,
    rgb=p.rgb,
    dtype_policy=p.dtype_policy,
    scale_factor=p.scale_factor,
    scale_offset=p.scale_offset,
)
