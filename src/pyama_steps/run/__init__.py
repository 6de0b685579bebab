"""The run: from a configuration to jobs and a manifest.

What lives here, by module:

* :mod:`~pyama_steps.run.config`: the config schema with defaults, one
  semantic pass (channels, FOVs, each segmentation method's options), error
  messages naming the key and the fix.
* :mod:`~pyama_steps.run.samples`: several input files in one run (the sample
  sheet).
* :mod:`~pyama_steps.run.plan`: inspect the input and resolve the config into
  a run plan (FOVs, channels, sizes, per-job resources).
* :mod:`~pyama_steps.run.steps`: the file-level side of each workflow rule:
  open the stacks, call the algorithm packages frame by frame, write outputs
  atomically and the job's record.
* :mod:`~pyama_steps.run.manifest`: ``processing_results.yaml`` and the
  all-FOV ``traces.csv``, from the job records.
* :mod:`~pyama_steps.run.execute`: the warm worker processes that run the
  jobs (public Snakemake interface only), and ``_preloaded``, what their fork
  server imports.
* :mod:`~pyama_steps.run.describe`: what is in a microscopy file, and a
  starting configuration for it (``pyama-steps inspect`` / ``init``).

May import every other package of pyama_steps except the validation kit
(:mod:`pyama_steps.validation`); nothing imports this package but the
workflow (``workflow/``) and :mod:`pyama_steps.cli`.
"""
