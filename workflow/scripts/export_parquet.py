"""Adapter of rule export_parquet: traces.csv as Parquet (needs pyarrow)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.report.export import write_traces_parquet
from pyama_steps.run.steps import run_logged

run_logged(
    snakemake.log[0],
    write_traces_parquet,
    csv=snakemake.input.traces,
    output=snakemake.output.parquet,
)
