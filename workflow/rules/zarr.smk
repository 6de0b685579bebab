# Exports (not part of the default target): one OME-Zarr per FOV that napari
# opens (phase + background-corrected fluorescence as a multiscale image, the
# tracked cells as a label image), and traces.parquet when pyarrow is
# installed (docs/exports.md):
#
#   snakemake --cores 2 zarr

import importlib.util

ZARR = f"{OUT}/zarr/fov_{{fov}}.ome.zarr"
TRACES_PARQUET = f"{OUT}/traces.parquet"
# pyarrow is optional (not a dependency): without it the Parquet copy of
# traces.csv is skipped, and the target rule says so
HAVE_PYARROW = importlib.util.find_spec("pyarrow") is not None


def get_export_zarr_input(wildcards):
    fov = wildcards.fov
    inputs = {
        "pc": stack("pc", PC, fov),
        "labeled": stack("seg_labeled", PC, fov),
        "traces": fov_csv("traces", fov),
    }
    if BG["write_corrected"]:
        inputs["corrected"] = [stack("fl_corrected", c, fov) for c in FL]
    elif BG["write_background"]:
        inputs["fl"] = [stack("fl", c, fov) for c in FL]
        inputs["background"] = [stack("fl_background", c, fov) for c in FL]
    elif FL:
        raise WorkflowError(
            "pyama-steps: the OME-Zarr export needs the corrected fluorescence; "
            "set background.write_corrected: true (or write_background: true)."
        )
    return inputs


rule export_zarr:
    input:
        unpack(get_export_zarr_input),
    output:
        zarr=directory(ZARR),
    params:
        pc=PC,
        fl=FL,
        weight=BG["weight"],
        channel_names={c: PLAN.channel_names[c] for c in [PC, *FL]},
        pixel_size_um=lambda wc: list(PLAN.fov(int(wc.fov)).pixel_size_um[1:]),
        times_min=lambda wc: list(PLAN.fov(int(wc.fov)).times_min),
    log:
        logfile("export_zarr"),
    benchmark:
        benchfile("export_zarr")
    threads: 1
    resources:
        # dask, zarr and ome-zarr imports (~200 MB) + a few float32 frames per
        # channel and pyramid level; the stacks are streamed frame by frame
        mem_mb=lambda wc: int(
            350 + 24 * (2 + len(FL)) * frame_pixels(wc) / 2**20
        ),
        runtime=runtime_min(ms_per_megapixel_frame=150),
    script:
        "../scripts/export_zarr.py"


rule export_parquet:
    input:
        traces=TRACES_ALL,
    output:
        parquet=TRACES_PARQUET,
    log:
        f"{OUT}/logs/export_parquet/export_parquet.log",
    benchmark:
        f"{OUT}/benchmarks/export_parquet/export_parquet.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=lambda wildcards: 5 + len(FOVS) // 20,
    script:
        "../scripts/export_parquet.py"


# Target: every FOV's OME-Zarr, and traces.parquet when pyarrow is installed.
# It always runs (no output) to say where the exports are, or why the Parquet
# file was skipped, on the terminal and in its log.
ZARR_DONE = "\n".join(
    [
        f"pyama-steps: OME-Zarr of {len(FOV_IDS)} FOV(s) in {OUT}/zarr/",
        (
            f"pyama-steps: {TRACES_PARQUET}"
            if HAVE_PYARROW
            else f"pyama-steps: {TRACES_PARQUET} skipped: pyarrow is not installed "
            f"(pip install pyarrow); the same table is {TRACES_ALL}"
        ),
    ]
)


rule zarr:
    localrule: True
    input:
        expand(ZARR, fov=FOV_IDS),
        [TRACES_PARQUET] if HAVE_PYARROW else [],
    log:
        f"{OUT}/logs/zarr/zarr.log",
    run:
        print(ZARR_DONE)
        Path(log[0]).write_text(ZARR_DONE + "\n", encoding="utf-8")
