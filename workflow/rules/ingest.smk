# Ingest (algorithms.md §1): metadata.json once per input file, then one copy
# job per FOV x channel that streams planes into a uint16 .npy: at the offsets
# of the run's plane index (built before the first job, index_planes in
# common.smk) or, without one, through bioio.

for run in RUNS:

    rule:
        name:
            run.name("inspect_input")
        input:
            raw=run.config["input"],
        output:
            run.metadata,
        params:
            input_path=run.config["input"],
            metadata=run.plan.to_metadata(),
            checksum=run.config["ingest"]["input_checksum"],
        log:
            f"{run.out}/logs/inspect_input/inspect_input.log",
        benchmark:
            f"{run.out}/benchmarks/inspect_input/inspect_input.tsv"
        threads: 1
        resources:
            mem_mb=200,
            # hashing runs at disk speed: allow ~1 min per 5 GB
            runtime=lambda wildcards, input: 5 + int(input.size_mb / 5000),
        run:
            run_step(
                log[0],
                "pyama_steps.run.steps:write_metadata",
                input_path=params.input_path,
                output=output[0],
                metadata=params.metadata,
                checksum=params.checksum,
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=output)

    rule:
        name:
            run.name("copy_channel")
        input:
            raw=run.config["input"],
        output:
            run.stack_out("{kind}", "{channel}"),
        params:
            fov=lambda wc: int(wc.fov),
            channel=lambda wc: int(wc.channel),
            z_mode=lambda wc, run=run: z_mode_for(run.config["ingest"], wc.kind),
            z_plane=run.config["ingest"]["z_plane"],
            rgb=run.config["ingest"]["rgb"],
            dtype_policy=run.config["ingest"]["dtype_policy"],
            scale_factor=run.config["ingest"]["scale_factor"],
            scale_offset=run.config["ingest"]["scale_offset"],
            # plane offsets found once per run (index_planes, common.smk)
            plane_index=run.plane_index,
        log:
            run.log("copy_channel", "_{kind}_c{channel}"),
        benchmark:
            run.bench("copy_channel", "_{kind}_c{channel}")
        # all jobs of one FOV form one component of group "fov": on a cluster,
        # --group-components fov=N runs N FOVs through every step in one job
        group:
            "fov"
        threads: 1
        priority: 4
        resources:
            # bioio and its readers' imports (~150 MB) + a few native planes
            mem_mb=run.mem_mb(bytes_per_pixel=40, base_mb=300),
            runtime=run.runtime_min(ms_per_megapixel_frame=30),
        run:
            run_step(
                log[0],
                "pyama_steps.run.steps:copy_channel",
                input_path=input.raw,
                output=output[0],
                fov=params.fov,
                channel=params.channel,
                z_mode=params.z_mode,
                z_plane=params.z_plane,
                rgb=params.rgb,
                dtype_policy=params.dtype_policy,
                scale_factor=params.scale_factor,
                scale_offset=params.scale_offset,
                plane_index=params.plane_index,
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=run.kept(output))
