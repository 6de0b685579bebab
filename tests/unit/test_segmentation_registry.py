"""Tests of the segmenter interface (pyama_steps.segmentation.registry)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyama_steps.run.config import ConfigError, load_schema, validate_config
from pyama_steps.segmentation import (
    FrameSegmentation,
    LogStdOptions,
    RodsOptions,
    choose_window,
    get_method,
    method_names,
    segment_log_std,
    segment_rods,
    texture_separation,
)
from pyama_steps.validation import synth

SCHEMA = load_schema(
    Path(__file__).parents[2] / "workflow" / "schemas" / "config.schema.yaml"
)


def _section(**segmentation: Any) -> dict[str, Any]:
    config = validate_config({"input": "x.nd2", "segmentation": segmentation}, SCHEMA)
    section: dict[str, Any] = config["segmentation"]
    return section


def _frames(n: int = 3) -> list[np.ndarray]:
    params = synth.preset("demo", seed=4, n_fov=1, n_frames=n)
    sim = synth.simulate_fov(params, 0)
    return [sim.render(t).images[0] for t in range(n)]


def test_every_schema_method_is_registered() -> None:
    enum = SCHEMA["properties"]["segmentation"]["properties"]["method"]["enum"]
    assert method_names() == tuple(sorted(enum))


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match=r"segmentation.method must be one of"):
        get_method("cellpose")


def test_options_are_built_from_the_section() -> None:
    section = _section(window=5, rods={"grow_px": 2})
    log_std = get_method("logstd").options(section)
    assert isinstance(log_std, LogStdOptions)
    assert log_std.window == 5
    assert isinstance(log_std.threshold_k, float)
    rods = get_method("rods").options(section)
    assert isinstance(rods, RodsOptions)
    assert rods.grow_px == 2


def test_config_check_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"'segmentation.window' must be an odd"):
        _section(window=4)
    with pytest.raises(ConfigError, match=r"'segmentation.mode_smooth_bins'"):
        _section(mode_smooth_bins=4)
    with pytest.raises(ConfigError, match=r"'segmentation.threshold_low_k' must be"):
        _section(threshold_k=1.0, threshold_low_k=2.0)


def test_log_std_method_is_segment_log_std() -> None:
    method = get_method("logstd")
    options = method.options(_section(window=3))
    frame = _frames(1)[0]
    result = method.segment(frame, options)
    assert isinstance(result, FrameSegmentation)
    reference = segment_log_std(frame)
    np.testing.assert_array_equal(result.mask, reference.mask)
    assert result.threshold == reference.threshold
    assert result.noise == math.exp(reference.mode)
    assert result.log_line.startswith(f"lo={reference.lo:.6g} ")


def test_log_std_prepare_chooses_the_window_once_per_fov() -> None:
    method = get_method("logstd")
    assert method.prepare is not None
    frames = _frames()
    fixed = method.options(_section(window=5, mode_guard_k=None))
    assert method.prepare(fixed, len(frames), frames.__getitem__) == (fixed, [])
    auto = method.options(_section(mode_guard_k=None))
    assert auto.window == "auto"
    chosen, lines = method.prepare(auto, len(frames), frames.__getitem__)
    assert chosen == dataclasses.replace(auto, window=chosen.window)
    assert lines[0].startswith(f"window={chosen.window} (auto; separation of frames ")
    # With the mode guard (the default), the FOV's background is measured at
    # the window chosen (tests/unit/test_mode_guard.py).
    # (5 frames: the demo preset drops frame 1, and 3 with texture are needed)
    five = _frames(5)
    guarded, lines = method.prepare(
        method.options(_section()), len(five), five.__getitem__
    )
    assert guarded.window == 3
    assert guarded.background is not None
    assert lines[1].startswith("background log-STD ")
    with pytest.raises(ValueError, match="'auto'"):
        method.segment(frames[0], auto)


def test_rods_method_is_segment_rods() -> None:
    method = get_method("rods")
    assert method.prepare is None
    params = synth.preset("rods", seed=1, n_fov=1, n_frames=1)
    frame = synth.simulate_fov(params, 0).render(0).images[0]
    result = method.segment(frame, method.options(_section(method="rods")))
    reference = segment_rods(frame)
    np.testing.assert_array_equal(result.mask, reference.mask)
    assert result.threshold == reference.body_threshold
    assert result.log_line.endswith(
        f"cells={reference.n_cells:d} fg=" + (f"{reference.foreground_fraction:.6f}")
    )


def test_library_defaults_are_the_configuration_defaults() -> None:
    # One decision, one value: every keyword default of segment_log_std is the
    # schema's default for the same segmentation key (window: 3 in the
    # library, where a caller gives one frame; 'auto' per FOV in the workflow),
    # and the window choice takes the same histogram defaults.
    schema = SCHEMA["properties"]["segmentation"]["properties"]
    library = {
        name: p.default
        for name, p in inspect.signature(segment_log_std).parameters.items()
        # background: the FOV's measurement (prepare), not a config key
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "background"
    }
    assert set(library) <= set(schema), set(library) - set(schema)
    differ = {
        name: (value, schema[name]["default"])
        for name, value in library.items()
        if value != schema[name]["default"]
    }
    assert differ == {"window": (3, "auto")}
    for function in (texture_separation, choose_window):
        shared = {
            name: p.default
            for name, p in inspect.signature(function).parameters.items()
            if name in library and name != "window"
        }
        assert shared == {
            k: library[k]
            for k in (
                "bins",
                "mode_smooth_bins",
                "mode_peak_fraction",
                "sigma_estimator",
            )
        }
