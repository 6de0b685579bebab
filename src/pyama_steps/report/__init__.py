"""What a run shows and hands on: QC figures, the run summary, standard exports.

Modules
-------
figures
    matplotlib figures of one FOV (overlay, background, traces); arrays in,
    figures out.
summary
    The run summary table and its HTML, from the manifest.
qc
    The writers of the figures and the summary for Snakemake's report (the
    ``qc_fov`` and ``qc_summary`` rules).
export
    OME-Zarr images with cell labels and the traces as Parquet (the ``zarr``
    and ``parquet`` targets).

May import :mod:`pyama_steps.io`, :mod:`pyama_steps.background` (the corrected
frames) and :mod:`pyama_steps.traces`; never the run modules
(:mod:`pyama_steps.run`) or the validation kit.
"""
