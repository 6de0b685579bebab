# Aggregate (algorithms.md §6): the manifest processing_results.yaml and the
# all-FOV traces.csv, once every selected FOV is done. After a failed job the
# Snakefile's onerror hook writes the same manifest with the failed FOVs'
# status, step and error line.


def get_aggregate_results_input(wildcards):
    files = [METADATA]
    for fov in FOV_IDS:
        files += [stack("pc", PC, fov), stack("seg", PC, fov), stack("seg_labeled", PC, fov)]
        files += [stack("fl", c, fov) for c in FL]
        for key, kind in (("corrected", "fl_corrected"), ("background", "fl_background")):
            if key in _correct_outputs:
                files += [stack(kind, c, fov) for c in FL]
        files += [fov_csv("lineage", fov), fov_csv("traces", fov)]
    return files


rule aggregate_results:
    input:
        get_aggregate_results_input,
    output:
        manifest=MANIFEST,
        traces=TRACES_ALL,
    params:
        out_dir=OUT,
        metadata=METADATA,
        fovs=FOVS,
        config={k: config[k] for k in config},
    log:
        f"{OUT}/logs/aggregate_results/aggregate_results.log",
    benchmark:
        f"{OUT}/benchmarks/aggregate_results/aggregate_results.tsv"
    threads: 1
    resources:
        mem_mb=200,
        runtime=lambda wildcards: 5 + len(FOVS) // 50,
    script:
        "../scripts/aggregate_results.py"
