# Extract (algorithms.md §5): per-cell, per-frame features of one FOV into
# fov_NNN/{base}_fov_NNN_traces.csv.


def get_extract_traces_input(run):
    def inputs(wildcards):
        fov = wildcards.fov
        files = {
            "labeled": run.stack("seg_labeled", run.pc, fov),
            "lineage": run.fov_csv("lineage", fov),
            "fl": [run.stack("fl", c, fov) for c in run.fl],
            # the corrected fluorescence: raw - the background model (§3.6)
            "model": [run.stack("fl_background_model", c, fov) for c in run.fl],
        }
        return files

    return inputs


for run in RUNS:

    rule:
        name:
            run.name("extract_traces")
        input:
            unpack(get_extract_traces_input(run)),
        output:
            traces=run.fov_csv("traces"),
        params:
            fov=lambda wc: int(wc.fov),
            pc=run.pc,
            fl=run.fl,
            times_min=run.times,
            extraction=run.config["extraction"],
            background=run.bg,
        log:
            run.log("extract_traces"),
        benchmark:
            run.bench("extract_traces")
        group:
            "fov"
        threads: 1
        priority: 1
        resources:
            # one label frame, 2 frames per channel, plus the table (cells x frames)
            mem_mb=run.per_fov(
                lambda wc, run=run: int(
                    200
                    + (16 + 24 * len(run.fl)) * run.frame_pixels(wc) / 2**20
                    + run.n_frames(wc) * 0.05
                )
            ),
            runtime=run.runtime_min(ms_per_megapixel_frame=40),
        run:
            run_step(
                log[0],
                "pyama_steps.run.steps:extract_traces",
                labeled=input.labeled,
                lineage=input.lineage,
                output=output.traces,
                fov=params.fov,
                pc_channel=params.pc,
                fl_channels=list(params.fl),
                fl=list(input.fl),
                model=list(input.model),
                times_min=params.times_min,
                params=dict(params.extraction),
                background_params=dict(params.background),
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=output)
