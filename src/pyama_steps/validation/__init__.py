"""The validation kit: the test bench of the pipeline, apart from it.

``synth``
    The synthetic time-lapse generator with exact ground truth (a package:
    parameters and presets, cell geometry and motion, divisions, optics,
    fluorescence, rendering).
``synth_io``
    The generator's writer: OME-TIFF or CZI files plus the truth folders.
``evaluate``
    Scores a run against the generator's truth (algorithms.md §8).
``ctc``
    Cell Tracking Challenge result and truth folders of a run.
``_run_files``
    A finished run's manifest and the files it lists, as ``evaluate`` and
    ``ctc`` read them.

May import the algorithm packages and ``io``/``paths``, never the run modules
(config, plan, steps, manifest, execute). The commands live in
:mod:`pyama_steps.cli`.
"""
