# Correct (algorithms.md §3): tile-interpolated background of each
# fluorescence channel, one job per FOV x channel. With both
# background.write_corrected and background.write_background off, the rule is
# not needed: extraction recomputes the background with the same function.

_correct_outputs = {}
if BG["write_corrected"]:
    _correct_outputs["corrected"] = stack("fl_corrected", "{channel}")
if BG["write_background"]:
    _correct_outputs["background"] = stack("fl_background", "{channel}")

if _correct_outputs:

    rule correct_background:
        input:
            fl=stack("fl", "{channel}"),
            seg=stack("seg", PC),
        output:
            **_correct_outputs,
        params:
            background=BG,
        log:
            logfile("correct_background", "_c{channel}"),
        benchmark:
            benchfile("correct_background", "_c{channel}")
        # all jobs of one FOV form one component of group "fov": on a cluster,
        # --group-components fov=N runs N FOVs through every step in one job
        group:
            "fov"
        threads: 1
        resources:
            # ~4 float64 frame-sized work arrays (§7.4)
            mem_mb=mem_mb(bytes_per_pixel=48),
            runtime=runtime_min(ms_per_megapixel_frame=60),
        script:
            "../scripts/correct_background.py"
