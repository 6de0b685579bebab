# Export (docs/ctc.md): one FOV's tracks as a Cell Tracking Challenge result
# folder, OUT/ctc/fov_NNN/ (maskTTT.tif + res_track.txt), for CTC scoring tools
# and napari. Not part of the default target: request a FOV's
# OUT/ctc/fov_NNN/res_track.txt, or every FOV with the rule ctc_all
# (`snakemake ctc_all`).

CTC_TARGETS = []
for run in RUNS:
    _tracks = f"{run.out}/ctc/fov_{{fov}}/res_track.txt"

    rule:
        name:
            run.name("export_ctc")
        input:
            labeled=run.stack("seg_labeled", run.pc),
            lineage=run.fov_csv("lineage"),
        output:
            # The masks are written into the same folder, which is filled under a
            # temporary name and renamed when complete; their number depends on
            # the FOV's frame count, so only the track file is declared.
            tracks=_tracks,
        log:
            run.log("export_ctc"),
        benchmark:
            run.bench("export_ctc")
        group:
            "fov"
        threads: 1
        resources:
            # one label frame read twice, an int64 copy for bincount, the uint16
            # frame written and two boolean checks (§7.4)
            mem_mb=run.mem_mb(bytes_per_pixel=24),
            runtime=run.runtime_min(ms_per_megapixel_frame=30),
        script:
            "../scripts/export_ctc.py"

    CTC_TARGETS += expand(_tracks, fov=run.fov_ids)


# Every FOV's CTC folder.
rule ctc_all:
    input:
        CTC_TARGETS,
    localrule: True
