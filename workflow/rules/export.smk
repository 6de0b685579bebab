# Export (docs/ctc.md): one FOV's tracks as a Cell Tracking Challenge result
# folder, OUT/ctc/fov_NNN/ (maskTTT.tif + res_track.txt), for CTC scoring tools
# and napari. Not part of the default target: request a FOV's
# OUT/ctc/fov_NNN/res_track.txt, or every FOV with the rule ctc_all
# (`snakemake ctc_all`). Include this file after track.smk: it reads
# rules.track_cells.output.


rule export_ctc:
    input:
        labeled=rules.track_cells.output.labeled,
        lineage=rules.track_cells.output.lineage,
    output:
        # The masks are written into the same folder, which is filled under a
        # temporary name and renamed when complete; their number depends on
        # the FOV's frame count, so only the track file is declared.
        tracks=f"{OUT}/ctc/fov_{{fov}}/res_track.txt",
    log:
        logfile("export_ctc"),
    benchmark:
        benchfile("export_ctc")
    # all jobs of one FOV form one component of group "fov": on a cluster,
    # --group-components fov=N runs N FOVs through every step in one job
    group:
        "fov"
    threads: 1
    resources:
        # one label frame read twice, an int64 copy for bincount, the uint16
        # frame written and two boolean checks (§7.4)
        mem_mb=mem_mb(bytes_per_pixel=24),
        runtime=runtime_min(ms_per_megapixel_frame=30),
    script:
        "../scripts/export_ctc.py"


# Every FOV's CTC folder.
rule ctc_all:
    input:
        expand(rules.export_ctc.output.tracks, fov=FOV_IDS),
    localrule: True
