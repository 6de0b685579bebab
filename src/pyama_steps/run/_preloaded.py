"""Imported last by the workers' fork server (``execute.PRELOAD``); nowhere else.

It freezes the objects the fork server has imported (numpy, scipy, pandas,
bioio, the step modules) into the garbage collector's permanent generation:

* the workers forked from it never touch those objects' GC headers, so their
  pages stay shared with the fork server instead of being copied;
* when the run ends, the fork server exits without a full collection over
  them, which took ~0.3 s after Snakemake itself had finished (the run's
  output stays open until the fork server has exited).

It also makes the fork server die with the Snakemake process
(``execute.die_with_parent``), so that after a ``kill -9`` of Snakemake
nothing of the run stays behind.
"""

import gc

from pyama_steps.run.execute import die_with_parent

die_with_parent()
gc.freeze()
