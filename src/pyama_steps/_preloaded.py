"""Imported last by the workers' fork server (``execute.PRELOAD``); nowhere else.

It freezes the objects the fork server has imported (numpy, scipy, pandas,
bioio, the step modules) into the garbage collector's permanent generation:

* the workers forked from it never touch those objects' GC headers, so their
  pages stay shared with the fork server instead of being copied;
* when the run ends, the fork server exits without a full collection over
  them, which took ~0.3 s after Snakemake itself had finished (the run's
  output stays open until the fork server has exited).
"""

import gc

gc.freeze()
