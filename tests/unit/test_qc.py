"""Tests for pyama_steps.report: figures, the run summary and the QC writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pyama_steps.io import NpyFrameWriter
from pyama_steps.report import qc
from pyama_steps.report.figures import _outline_colours, _outline_rgba
from pyama_steps.report.qc import (
    SUMMARY_COLUMNS,
    background_figure,
    overlay_figure,
    pick_frames,
    save_png,
    summary_html,
    summary_table,
    traces_figure,
    write_fov_qc,
    write_summary,
)
from pyama_steps.run import steps

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def two_cells(shape: tuple[int, int] = (20, 30)) -> np.ndarray:
    """Labels with a 5 x 6 cell (id 3) and a 4 x 4 cell (id 7)."""
    labels = np.zeros(shape, dtype=np.uint16)
    labels[2:7, 3:9] = 3
    labels[10:14, 18:22] = 7
    return labels


def traces_table(n_frames: int = 4, fl: tuple[int, ...] = (1,)) -> pd.DataFrame:
    """Cell 3 in every frame (good), cell 7 in the first two frames."""
    rows = []
    for t in range(n_frames):
        for cell, good, x, y in ((3, True, 5.5, 4.0), (7, False, 19.5, 11.5)):
            if cell == 7 and t >= 2:
                continue
            row = {
                "fov": 0,
                "cell": cell,
                "parent": 0,
                "frame": t,
                "time": 10.0 * t,
                "good": good,
                "position_x": x,
                "position_y": y,
            }
            for c in fl:
                row[f"intensity_mean_ch_{c}"] = 100.0 * cell + t
            rows.append(row)
    return pd.DataFrame(rows)


def write_stack(path: Path, frames: np.ndarray) -> str:
    with NpyFrameWriter(path, frames.shape, frames.dtype) as w:
        for t, frame in enumerate(frames):
            w.write(t, frame)
    return str(path)


def background_params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        "method": "tiles",
        "mask_dilation_px": 1,
        "block_px": 4,
        "knot_spacing_px": 8.0,
        "smoothing": 1e-3,
        "tile_size": 8,
        "tile_overlap": 0.5,
        "min_background_px": 4,
        "spline_degree": 1,
        "exclude_zero": False,
        "fallback_percentile": 10.0,
        "weight": 1.0,
    }
    params.update(overrides)
    return params


@pytest.fixture
def fov_stacks(tmp_path: Path) -> dict[str, object]:
    """A 5-frame FOV (20 x 30) with phase, labels, raw and corrected FL."""
    rng = np.random.default_rng(0)
    n_t = 5
    labels = np.stack([two_cells()] * n_t)
    pc = rng.integers(900, 1100, (n_t, 20, 30)).astype(np.uint16)
    raw = rng.integers(200, 260, (n_t, 20, 30)).astype(np.uint16)
    traces = tmp_path / "traces.csv"
    traces_table(n_t).to_csv(traces, index=False)
    fl = write_stack(tmp_path / "fl.npy", raw)
    seg = write_stack(tmp_path / "seg.npy", labels > 0)
    # the background step writes the model, and here the stacks to compare
    steps.correct_background(
        fl=fl,
        seg=seg,
        model=str(tmp_path / "model.npy"),
        corrected=str(tmp_path / "corr.npy"),
        background=str(tmp_path / "bg.npy"),
        params=background_params(),
    )
    return {
        "pc": write_stack(tmp_path / "pc.npy", pc),
        "labeled": write_stack(tmp_path / "labels.npy", labels),
        "fl": [fl],
        "model": [str(tmp_path / "model.npy")],
        "corrected": [str(tmp_path / "corr.npy")],
        "background": [str(tmp_path / "bg.npy")],
        "seg": seg,
        "traces": str(traces),
        "n_t": n_t,
    }


def run_fov_qc(stacks: dict[str, object], out: Path, **kw: object) -> list[int]:
    args: dict[str, object] = {
        "pc": stacks["pc"],
        "labeled": stacks["labeled"],
        "traces": stacks["traces"],
        "fl": stacks["fl"],
        "model": stacks["model"],
        "background_params": background_params(),
        "fl_channels": [1],
        "channel_names": {0: "Phase", 1: "GFP"},
        "fov": 2,
        "times_min": [10.0 * t for t in range(int(stacks["n_t"]))],  # type: ignore[call-overload]
        "overlay_png": str(out / "overlay.png"),
        "background_png": str(out / "background.png"),
        "traces_png": str(out / "traces.png"),
    }
    args.update(kw)
    return write_fov_qc(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# pick_frames
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_frames", "n", "expected"),
    [
        (24, 4, [0, 8, 15, 23]),
        (1, 4, [0]),
        (2, 4, [0, 1]),
        (3, 4, [0, 1, 2]),
        (100, 3, [0, 50, 99]),
        (10, 1, [0]),
    ],
)
def test_pick_frames(n_frames: int, n: int, expected: list[int]) -> None:
    assert pick_frames(n_frames, n=n) == expected


@pytest.mark.parametrize(("n_frames", "n"), [(0, 4), (5, 0)])
def test_pick_frames_rejects_empty(n_frames: int, n: int) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        pick_frames(n_frames, n=n)


# --------------------------------------------------------------------------
# figure builders
# --------------------------------------------------------------------------


def test_outline_is_the_inner_boundary_coloured_by_id() -> None:
    labels = two_cells()
    rgba = _outline_rgba(labels, thickness=1)
    colours = _outline_colours()
    # the boundary of cell 3 (rows 2-6, columns 3-8) has its colour, the
    # inside and the background are transparent
    assert np.array_equal(rgba[2, 3], colours[3])
    assert np.array_equal(rgba[6, 8], colours[3])
    assert rgba[4, 5, 3] == 0
    assert rgba[0, 0, 3] == 0
    assert np.array_equal(rgba[10, 18], colours[7])
    edge = rgba[..., 3] > 0
    assert edge.sum() == (5 * 6 - 3 * 4) + (4 * 4 - 2 * 2)
    # widened outlines keep the id's colour and cover more pixels
    wide = _outline_rgba(labels, thickness=3)
    assert (wide[..., 3] > 0).sum() > edge.sum()


def test_overlay_writes_ids_at_centroids() -> None:
    labels = two_cells()
    phase = np.arange(600, dtype=np.uint16).reshape(20, 30)
    cells = traces_table(4)
    fig = overlay_figure(
        [phase, phase, phase],
        [labels, labels, labels],
        frames=[0, 2, 3],
        times_min=[0.0, 20.0, 30.0],
        cells=cells,
        title="t",
    )
    axes = fig.axes
    assert len(axes) == 3
    first = {t.get_text(): t.get_position() for t in axes[0].texts}
    assert first == {"3": (5.5, 4.0), "7": (19.5, 11.5)}
    # cell 7 is gone in frames 2 and 3; a good cell's id is drawn in yellow
    assert [t.get_text() for t in axes[1].texts] == ["3"]
    assert axes[1].texts[0].get_color() == "#ffd23f"
    assert "2 cells" in axes[0].get_title()
    assert "1 cells" in axes[2].get_title()


def test_overlay_rejects_mismatched_inputs() -> None:
    labels = two_cells()
    with pytest.raises(ValueError, match="same non-zero length"):
        overlay_figure([labels], [], frames=[0], times_min=[0.0], cells=traces_table())
    with pytest.raises(ValueError, match="must both have the shape"):
        overlay_figure(
            [labels, labels],
            [labels, labels[:10]],
            frames=[0, 1],
            times_min=[0.0, 1.0],
            cells=traces_table(),
        )


def test_background_figure_shares_one_scale_per_channel() -> None:
    a = np.full((6, 8), 10.0, dtype=np.float32)
    b = np.linspace(0, 100, 48, dtype=np.float32).reshape(6, 8)
    fig = background_figure(
        [[a, b], [b, b]],
        frames=[0, 5],
        times_min=[0.0, 50.0],
        channel_labels=["ch 1 (GFP)", "ch 2"],
    )
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4
    # both panels of a channel have the same colour limits
    assert images[0].get_clim() == images[1].get_clim()
    for image, panels in zip(images[::2], ([a, b], [b, b]), strict=True):
        expected = np.percentile(np.concatenate([p.ravel() for p in panels]), [1, 99])
        assert image.get_clim() == pytest.approx(tuple(expected))
    assert fig.axes[0].get_ylabel() == "ch 1 (GFP)"


def test_background_figure_edge_cases() -> None:
    fig = background_figure([], frames=[0], times_min=[0.0], channel_labels=[])
    assert "no fluorescence channel" in fig.texts[0].get_text()
    constant = np.zeros((3, 3), dtype=np.float32)
    fig = background_figure(
        [[constant]], frames=[0], times_min=[0.0], channel_labels=["ch 1"]
    )
    assert fig.axes[0].images[0].get_clim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="one frame per column"):
        background_figure(
            [[constant]], frames=[0, 1], times_min=[0.0, 1.0], channel_labels=["c"]
        )


def test_traces_figure_draws_one_line_per_cell() -> None:
    from matplotlib.collections import LineCollection

    table = traces_table(4, fl=(1, 2))
    fig = traces_figure(table, fl_channels=[1, 2], channel_labels=["ch 1", "ch 2"])
    assert len(fig.axes) == 4
    segments = [
        next(c for c in ax.collections if isinstance(c, LineCollection)).get_segments()
        for ax in fig.axes
    ]
    all_cells, good_cells = segments[0], segments[1]
    assert len(all_cells) == 2
    assert len(good_cells) == 1
    # cell 3: time on x, intensity_mean on y, in frame order
    assert np.array_equal(good_cells[0][:, 0], [0.0, 10.0, 20.0, 30.0])
    assert np.array_equal(good_cells[0][:, 1], [300.0, 301.0, 302.0, 303.0])
    assert "n = 2" in fig.axes[0].get_title()


def test_traces_figure_without_good_cells_or_channels() -> None:
    table = traces_table(4)
    table["good"] = False
    fig = traces_figure(table, fl_channels=[1], channel_labels=["ch 1"])
    assert any("no good cells" in t.get_text() for t in fig.axes[1].texts)
    fig = traces_figure(table, fl_channels=[], channel_labels=[])
    assert "no fluorescence channel" in fig.texts[0].get_text()
    with pytest.raises(ValueError, match="intensity_mean_ch_5"):
        traces_figure(table, fl_channels=[5], channel_labels=["ch 5"])


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------


MANIFEST = {
    "fov_status": {
        "0": {"status": "ok", "n_cells": 41, "n_good": 33},
        "3": {
            "status": "failed",
            "step": "background",
            "message": "ValueError: <bad>",
            "log": "logs/correct_background/fov_003_c1.log",
        },
        "10": {"status": "pending"},
        "2": {"status": "ok", "n_cells": 5, "n_good": 0},
    }
}
META = {
    "fovs": {
        "0": {"shape_tczyx": [30, 2, 1, 64, 64]},
        "2": {"shape_tczyx": [12, 2, 1, 64, 64]},
        "3": {"shape_tczyx": [30, 2, 1, 64, 64]},
        "10": {"shape_tczyx": [30, 2, 1, 64, 64]},
    }
}


def test_summary_table() -> None:
    table = summary_table(MANIFEST, META)
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert table["fov"].tolist() == [0, 2, 3, 10]  # numeric FOV order
    assert table["status"].tolist() == ["ok", "ok", "failed", "pending"]
    assert table["cells"].tolist() == [41, 5, 0, 0]
    assert table["good_cells"].tolist() == [33, 0, 0, 0]
    assert table["frames"].tolist() == [30, 12, 30, 30]
    assert table.loc[2, "step"] == "background"
    assert table.loc[2, "log"] == "logs/correct_background/fov_003_c1.log"
    assert table.loc[0, "message"] == ""
    assert table.loc[0, "log"] == ""


def test_summary_html_totals_and_escaping() -> None:
    page = summary_html(summary_table(MANIFEST, META))
    assert page.startswith("<!doctype html>")
    # totals: 4 FOVs, 2 ok, 1 failed, 1 pending, 46 cells, 33 good, 42 frames
    assert (
        "<td>4</td><td>2</td><td>1</td><td>1</td><td>46</td><td>33</td><td>42</td>"
        in (page)
    )
    assert "ValueError: &lt;bad&gt;" in page
    assert "<bad>" not in page
    assert '<tr class="failed">' in page


WARNED = {
    "fov_status": {
        "0": {
            "status": "ok",
            "n_cells": 0,
            "n_good": 0,
            "warnings": [
                {
                    "check": "blank_channel",
                    "frames": "0-29",
                    "n_frames": 30,
                    "message": "FOV 0: the phase-contrast channel 0 ('Phase') is "
                    "blank in all 30 frames (value 0) <x>",
                }
            ],
            "notes": [],
        },
        "2": {
            "status": "ok",
            "n_cells": 5,
            "n_good": 0,
            "warnings": [],
            "notes": [
                {
                    "check": "dropped_frames",
                    "frames": "4",
                    "n_frames": 1,
                    "message": "FOV 2, frame 4: the phase-contrast image is all zero",
                }
            ],
        },
    }
}


def test_summary_lists_the_segmentation_checks() -> None:
    table = summary_table(WARNED, META)
    assert table["warnings"].tolist() == [1, 0]
    assert table.loc[0, "checks"].startswith("warning: FOV 0: the phase-contrast")
    assert table.loc[1, "checks"] == (
        "note: FOV 2, frame 4: the phase-contrast image is all zero"
    )
    page = summary_html(table)
    assert "<h2>Segmentation checks</h2>" in page
    assert "warning: FOV 0: the phase-contrast channel 0 (&#x27;Phase&#x27;)" in page
    assert "(value 0) &lt;x&gt;" in page
    assert "note: FOV 2, frame 4" in page
    assert '<tr class="warned">' in page  # FOV 0: ok, with a warning
    assert '<tr class="ok">' in page
    # the totals end with the number of warnings
    assert "<td>5</td><td>0</td><td>42</td><td>1</td></tr>" in page


def test_summary_without_warnings_says_so() -> None:
    page = summary_html(summary_table(MANIFEST, META))
    assert "No warning: every FOV" in page


def test_write_summary(tmp_path: Path) -> None:
    import json

    import yaml

    (tmp_path / "m.yaml").write_text(yaml.safe_dump(MANIFEST))
    (tmp_path / "meta.json").write_text(json.dumps(META))
    write_summary(
        manifest=str(tmp_path / "m.yaml"),
        metadata=str(tmp_path / "meta.json"),
        html_out=str(tmp_path / "s.html"),
        tsv_out=str(tmp_path / "s.tsv"),
    )
    tsv = pd.read_csv(tmp_path / "s.tsv", sep="\t", keep_default_na=False)
    assert tsv["fov"].tolist() == [0, 2, 3, 10]
    assert (tmp_path / "s.tsv").read_text().splitlines()[0].split("\t") == list(
        SUMMARY_COLUMNS
    )
    assert "run summary" in (tmp_path / "s.html").read_text()


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------


def test_save_png_is_deterministic_and_has_no_software_tag(tmp_path: Path) -> None:
    def build() -> object:
        return traces_figure(traces_table(), fl_channels=[1], channel_labels=["c"])

    save_png(build(), tmp_path / "a.png")
    save_png(build(), tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data == (tmp_path / "b.png").read_bytes()
    assert b"Software" not in data
    assert b"matplotlib" not in data
    assert not list(tmp_path.glob("*.tmp-*"))


def test_write_fov_qc_writes_three_deterministic_figures(
    fov_stacks: dict[str, object], tmp_path: Path
) -> None:
    first, second = tmp_path / "1", tmp_path / "2"
    assert run_fov_qc(fov_stacks, first) == [0, 1, 3, 4]
    run_fov_qc(fov_stacks, second)
    for name in ("overlay.png", "background.png", "traces.png"):
        data = (first / name).read_bytes()
        assert data == (second / name).read_bytes(), name
        with Image.open(first / name) as im:
            pixels = np.asarray(im.convert("L"), dtype=np.float64)
        assert pixels.std() > 5, f"{name} looks blank"


def test_write_fov_qc_shows_what_the_background_step_subtracted(
    fov_stacks: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the panels come from the model: bit for bit raw - the corrected stack
    # the background step wrote
    shown: dict[str, list[list[np.ndarray]]] = {}

    def spy(backgrounds, **kw):  # type: ignore[no-untyped-def]
        shown[kw["title"]] = [list(b) for b in backgrounds]
        return real(backgrounds, **kw)

    real = qc.background_figure
    monkeypatch.setattr(qc, "background_figure", spy)
    frames = run_fov_qc(fov_stacks, tmp_path / "qc")
    assert sorted(shown) == ["FOV 002: background estimate (raw - corrected)"]
    panels = shown["FOV 002: background estimate (raw - corrected)"]
    raw = np.load(fov_stacks["fl"][0])  # type: ignore[index]
    corrected = np.load(fov_stacks["corrected"][0])  # type: ignore[index]
    assert len(panels) == 1
    assert len(panels[0]) == len(frames) == 4
    for t, panel in zip(frames, panels[0], strict=True):
        expected = raw[t].astype(np.float32) - corrected[t]
        assert panel.tobytes() == expected.tobytes()


def test_write_fov_qc_errors(fov_stacks: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame times for 5 frames"):
        run_fov_qc(fov_stacks, tmp_path, times_min=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"but 0 model\(s\)"):
        run_fov_qc(fov_stacks, tmp_path, model=[])
    with pytest.raises(ValueError, match=r"fluorescence stack\(s\) for channels"):
        run_fov_qc(fov_stacks, tmp_path, fl=[])
