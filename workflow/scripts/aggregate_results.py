"""Adapter of rule aggregate_results: manifest and all-FOV traces (§6)."""

# `snakemake` (input, output, params, log) is injected by the script: directive.

import json

from pyama_steps.manifest import write_results
from pyama_steps.steps import run_logged

p = snakemake.params
with open(p.metadata, encoding="utf-8") as fh:
    meta = json.load(fh)
run_logged(
    snakemake.log[0],
    write_results,
    out_dir=p.out_dir,
    meta=meta,
    config=p.config,
    fovs=p.fovs,
)
