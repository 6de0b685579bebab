# Extract (algorithms.md §5): per-cell, per-frame features of one FOV into
# fov_NNN/{base}_fov_NNN_traces.csv.


def get_extract_traces_input(wildcards):
    inputs = {
        "labeled": stack("seg_labeled", PC, wildcards.fov),
        "lineage": fov_csv("lineage", wildcards.fov),
        "fl": [stack("fl", c, wildcards.fov) for c in FL],
    }
    if BG["write_corrected"]:
        inputs["corrected"] = [stack("fl_corrected", c, wildcards.fov) for c in FL]
    elif BG["write_background"]:
        inputs["background"] = [stack("fl_background", c, wildcards.fov) for c in FL]
    elif FL:
        inputs["seg"] = stack("seg", PC, wildcards.fov)
    return inputs


rule extract_traces:
    input:
        unpack(get_extract_traces_input),
    output:
        traces=fov_csv("traces"),
    params:
        fov=lambda wc: int(wc.fov),
        pc=PC,
        fl=FL,
        times_min=lambda wc: list(PLAN.fov(int(wc.fov)).times_min),
        extraction=config["extraction"],
        # only needed to recompute the background when no stack was written
        background=None if BG["write_corrected"] else BG,
    log:
        logfile("extract_traces"),
    benchmark:
        benchfile("extract_traces")
    # all jobs of one FOV form one component of group "fov": on a cluster,
    # --group-components fov=N runs N FOVs through every step in one job
    group:
        "fov"
    threads: 1
    resources:
        # one label frame, 2 frames per channel, plus the table (cells x frames)
        mem_mb=lambda wc: int(
            200 + (16 + 24 * len(FL)) * frame_pixels(wc) / 2**20
            + n_frames(wc) * 0.05
        ),
        runtime=runtime_min(ms_per_megapixel_frame=40),
    script:
        "../scripts/extract_traces.py"
