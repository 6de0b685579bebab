# Correct (algorithms.md §3): the background surface of each fluorescence
# channel, one job per FOV x channel. It writes each frame's background model
# (§3.6, a few kB per frame), from which every later step computes the
# corrected fluorescence (pyama_steps.background.corrected); the float32 corrected and
# background stacks only when background.write_corrected / write_background.

for run in RUNS:
    _outputs = {"model": run.stack_out("fl_background_model", "{channel}")}
    if run.bg["write_corrected"]:
        _outputs["corrected"] = run.stack_out("fl_corrected", "{channel}")
    if run.bg["write_background"]:
        _outputs["background"] = run.stack_out("fl_background", "{channel}")

    rule:
        name:
            run.name("correct_background")
        input:
            fl=run.stack("fl", "{channel}"),
            seg=run.stack("seg", run.pc),
        output:
            **_outputs,
        params:
            background=run.bg,
        log:
            run.log("correct_background", "_c{channel}"),
        benchmark:
            run.bench("correct_background", "_c{channel}")
        group:
            "fov"
        threads: 1
        priority: 2
        resources:
            # ~4 float64 frame-sized work arrays (§7.4)
            mem_mb=run.mem_mb(bytes_per_pixel=48),
            runtime=run.runtime_min(ms_per_megapixel_frame=60),
        run:
            run_step(
                log[0],
                "pyama_steps.run.steps:correct_background",
                fl=input.fl,
                seg=input.seg,
                model=output.model,
                corrected=output.get("corrected"),
                background=output.get("background"),
                params=dict(params.background),
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=run.kept(output))
