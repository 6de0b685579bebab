# Segment (algorithms.md §2): log-STD thresholding of the phase-contrast stack,
# one job per FOV, frame by frame.


rule segment_phase:
    input:
        pc=stack("pc", PC),
    output:
        seg=stack("seg", PC),
    params:
        segmentation=config["segmentation"],
    log:
        logfile("segment_phase"),
    benchmark:
        benchfile("segment_phase")
    # all jobs of one FOV form one component of group "fov": on a cluster,
    # --group-components fov=N runs N FOVs through every step in one job
    group:
        "fov"
    threads: 1
    resources:
        # ~6 float64 frame-sized work arrays (§7.4)
        mem_mb=mem_mb(bytes_per_pixel=64),
        runtime=runtime_min(ms_per_megapixel_frame=100),
    script:
        "../scripts/segment_phase.py"
