"""Adapter of rule qc_summary: the run's summary table (HTML and TSV)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

from pyama_steps.report.qc import write_summary
from pyama_steps.run.steps import run_logged

run_logged(
    snakemake.log[0],
    write_summary,
    manifest=snakemake.params.manifest,
    metadata=snakemake.input.metadata,
    html_out=snakemake.output.html,
    tsv_out=snakemake.output.tsv,
)
