# Exports (not part of the default target): one OME-Zarr per FOV that napari
# opens (phase + background-corrected fluorescence as a multiscale image, the
# tracked cells as a label image), and traces.parquet when pyarrow is
# installed (docs/exports.md):
#
#   snakemake zarr --cores 2

import importlib.util

# pyarrow is optional (not a dependency): without it the Parquet copy of
# traces.csv is skipped, and the target rule says so
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None


def get_export_zarr_input(run):
    def inputs(wildcards):
        fov = wildcards.fov
        files = {
            "pc": run.stack("pc", run.pc, fov),
            "labeled": run.stack("seg_labeled", run.pc, fov),
            "traces": run.fov_csv("traces", fov),
            # the corrected fluorescence: raw - the background model (§3.6)
            "fl": [run.stack("fl", c, fov) for c in run.fl],
            "model": [run.stack("fl_background_model", c, fov) for c in run.fl],
        }
        return files

    return inputs


ZARR_TARGETS = []
ZARR_DONE = []
for run in RUNS:
    _zarr = f"{run.out}/zarr/fov_{{fov}}.ome.zarr"
    _parquet = f"{run.out}/traces.parquet"

    rule:
        name:
            run.name("export_zarr")
        input:
            unpack(get_export_zarr_input(run)),
        output:
            zarr=directory(_zarr),
        params:
            pc=run.pc,
            fl=run.fl,
            background=run.bg,
            channel_names=run.channel_names(),
            pixel_size_um=lambda wc, run=run: list(
                run.plan.fov(int(wc.fov)).pixel_size_um[1:]
            ),
            times_min=run.times,
        log:
            run.log("export_zarr"),
        benchmark:
            run.bench("export_zarr")
        threads: 1
        resources:
            # dask, zarr and ome-zarr imports (~200 MB) + a few float32 frames per
            # channel and pyramid level; the stacks are streamed frame by frame
            mem_mb=run.per_fov(
                lambda wc, run=run: int(
                    350 + 24 * (2 + len(run.fl)) * run.frame_pixels(wc) / 2**20
                )
            ),
            runtime=run.runtime_min(ms_per_megapixel_frame=150),
        script:
            "../scripts/export_zarr.py"

    rule:
        name:
            run.name("export_parquet")
        input:
            traces=run.traces_all,
        output:
            parquet=_parquet,
        log:
            f"{run.out}/logs/export_parquet/export_parquet.log",
        benchmark:
            f"{run.out}/benchmarks/export_parquet/export_parquet.tsv"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5 + len(run.fovs) // 20,
        script:
            "../scripts/export_parquet.py"

    ZARR_TARGETS += expand(_zarr, fov=run.fov_ids)
    if HAVE_PYARROW:
        ZARR_TARGETS.append(_parquet)
    ZARR_DONE.append(f"pyama-steps: OME-Zarr of {len(run.fov_ids)} FOV(s) in {run.out}/zarr/")
    ZARR_DONE.append(
        f"pyama-steps: {_parquet}"
        if HAVE_PYARROW
        else f"pyama-steps: {_parquet} skipped: pyarrow is not installed "
        f"(pip install pyarrow); the same table is {run.traces_all}"
    )

ZARR_DONE = "\n".join(ZARR_DONE)


# Target: every FOV's OME-Zarr, and traces.parquet when pyarrow is installed.
# It always runs (no output) to say where the exports are, or why the Parquet
# file was skipped, on the terminal and in its log.
rule zarr:
    localrule: True
    input:
        ZARR_TARGETS,
    log:
        f"{OUT}/logs/zarr/zarr.log",
    run:
        # Snakemake marks a directory output's age with a .snakemake_timestamp
        # file inside it, which zarr warns about on open ("not recognized as a
        # component of a Zarr hierarchy"); without it, Snakemake uses the
        # folder's own modification time, which is as new.
        for target in input:
            stamp = Path(target) / ".snakemake_timestamp"
            if target.endswith(".ome.zarr") and stamp.exists():
                stamp.unlink()
        print(ZARR_DONE)
        Path(log[0]).write_text(ZARR_DONE + "\n", encoding="utf-8")
