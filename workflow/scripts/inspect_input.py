"""Adapter of rule inspect_input: write metadata.json (algorithms.md §1.3)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.steps import run_logged, write_metadata

run_logged(
    snakemake.log[0],
    write_metadata,
    input_path=snakemake.params.input_path,
    output=snakemake.output[0],
    metadata=snakemake.params.metadata,
    checksum=snakemake.params.checksum,
)
