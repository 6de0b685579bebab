# Track (algorithms.md §4): mask-IoU linking with Hungarian assignment, births,
# gap closing and divisions; one job per FOV.

for run in RUNS:

    rule:
        name:
            run.name("track_cells")
        input:
            seg=run.stack("seg", run.pc),
        output:
            labeled=run.stack("seg_labeled", run.pc),
            lineage=run.fov_csv("lineage"),
            # objects and median area per frame, for the segmentation checks
            stats=run.fov_json("cell_stats"),
        params:
            fov=lambda wc: int(wc.fov),
            tracking=run.config["tracking"],
        log:
            run.log("track_cells"),
        benchmark:
            run.bench("track_cells")
        group:
            "fov"
        threads: 1
        priority: 2
        resources:
            # max_gap + 2 int32 label frames plus per-frame lookup tables
            mem_mb=run.mem_mb(bytes_per_pixel=4 * (run.config["tracking"]["max_gap"] + 6)),
            runtime=run.runtime_min(ms_per_megapixel_frame=30),
        run:
            run_step(
                log[0],
                "pyama_steps.run.steps:track_cells",
                seg=input.seg,
                labeled=output.labeled,
                lineage=output.lineage,
                stats=output.stats,
                fov=params.fov,
                params=dict(params.tracking),
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=output)
