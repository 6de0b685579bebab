# Segment (algorithms.md §2): the phase-contrast stack with the method that
# segmentation.method names (pyama_steps.segmentation registry), one job per
# FOV, frame by frame; also the per-frame figures of the segmentation checks
# (§2.8), which the manifest turns into warnings.

for run in RUNS:

    rule:
        name:
            run.name("segment_phase")
        input:
            pc=run.stack("pc", run.pc),
        output:
            seg=run.stack_out("seg", run.pc),
            # per-frame figures of the segmentation checks (§2.8)
            stats=run.fov_json("seg_stats"),
        params:
            segmentation=run.config["segmentation"],
        log:
            run.log("segment_phase"),
        benchmark:
            run.bench("segment_phase")
        group:
            "fov"
        threads: 1
        priority: 3
        resources:
            # ~6 float64 frame-sized work arrays (§7.4)
            mem_mb=run.mem_mb(bytes_per_pixel=64),
            runtime=run.runtime_min(ms_per_megapixel_frame=100),
        run:
            run_step(
                log[0],
                "pyama_steps.run.steps:segment_phase",
                pc=input.pc,
                output=output.seg,
                stats=output.stats,
                params=dict(params.segmentation),
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=run.kept(output))
