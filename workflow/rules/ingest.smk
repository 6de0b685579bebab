# Ingest (algorithms.md §1): metadata.json once per input file, then one copy
# job per FOV x channel that streams planes through bioio into a uint16 .npy.


rule inspect_input:
    input:
        raw=config["input"],
    output:
        METADATA,
    params:
        input_path=config["input"],
        metadata=PLAN.to_metadata(),
        checksum=config["ingest"]["input_checksum"],
    log:
        f"{OUT}/logs/inspect_input/inspect_input.log",
    benchmark:
        f"{OUT}/benchmarks/inspect_input/inspect_input.tsv"
    threads: 1
    resources:
        mem_mb=200,
        # hashing runs at disk speed: allow ~1 min per 5 GB
        runtime=lambda wildcards, input: 5 + int(input.size_mb / 5000),
    script:
        "../scripts/inspect_input.py"


rule copy_channel:
    input:
        raw=config["input"],
    output:
        stack("{kind}", "{channel}"),
    params:
        fov=lambda wc: int(wc.fov),
        channel=lambda wc: int(wc.channel),
        z_mode=lambda wc: z_mode_for(config["ingest"], wc.kind),
        z_plane=config["ingest"]["z_plane"],
        rgb=config["ingest"]["rgb"],
        dtype_policy=config["ingest"]["dtype_policy"],
        scale_factor=config["ingest"]["scale_factor"],
        scale_offset=config["ingest"]["scale_offset"],
    log:
        logfile("copy_channel", "_{kind}_c{channel}"),
    benchmark:
        benchfile("copy_channel", "_{kind}_c{channel}")
    # all jobs of one FOV form one component of group "fov": on a cluster,
    # --group-components fov=N runs N FOVs through every step in one job
    group:
        "fov"
    threads: 1
    resources:
        # bioio and its readers' imports (~150 MB) + a few native planes
        mem_mb=mem_mb(bytes_per_pixel=40, base_mb=300),
        runtime=runtime_min(ms_per_megapixel_frame=30),
    script:
        "../scripts/copy_channel.py"
