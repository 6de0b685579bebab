# Track (algorithms.md §4): mask-IoU linking with Hungarian assignment, births,
# gap closing and divisions; one job per FOV.


rule track_cells:
    input:
        seg=stack("seg", PC),
    output:
        labeled=stack("seg_labeled", PC),
        lineage=fov_csv("lineage"),
    params:
        fov=lambda wc: int(wc.fov),
        tracking=config["tracking"],
    log:
        logfile("track_cells"),
    benchmark:
        benchfile("track_cells")
    # all jobs of one FOV form one component of group "fov": on a cluster,
    # --group-components fov=N runs N FOVs through every step in one job
    group:
        "fov"
    threads: 1
    resources:
        # max_gap + 2 int32 label frames plus per-frame lookup tables
        mem_mb=mem_mb(bytes_per_pixel=4 * (config["tracking"]["max_gap"] + 6)),
        runtime=runtime_min(ms_per_megapixel_frame=30),
    script:
        "../scripts/track_cells.py"
