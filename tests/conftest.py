"""Shared pytest fixtures for pyama-steps."""

from __future__ import annotations
