"""pyama-steps: PyAMA's time-lapse processing pipeline as a Snakemake workflow."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
