# Aggregate (algorithms.md §6): the manifest processing_results.yaml and the
# all-FOV traces.csv of each run, once every selected FOV is done. After a
# failed job the Snakefile's onerror hook writes the same manifest with the
# failed FOVs' status, step and error line. With a sample sheet, also the
# run-level OUT/samples_summary.tsv.

for run in RUNS:

    rule:
        name:
            run.name("aggregate_results")
        input:
            run.aggregate_inputs(),
        output:
            manifest=run.manifest,
            traces=run.traces_all,
        params:
            out_dir=run.out,
            metadata=run.metadata,
            fovs=run.fovs,
            config=run.config,
        log:
            f"{run.out}/logs/aggregate_results/aggregate_results.log",
        benchmark:
            f"{run.out}/benchmarks/aggregate_results/aggregate_results.tsv"
        threads: 1
        resources:
            mem_mb=200,
            runtime=5 + len(run.fovs) // 50,
        run:
            run_step(
                log[0],
                "pyama_steps.run.manifest:write_results_from",
                out_dir=params.out_dir,
                metadata=params.metadata,
                config=params.config,
                fovs=list(params.fovs),
            )
            # sizes and checksums of the outputs (pyama-steps verify, §6.5)
            record_outputs(log_path=log[0], files=output)


if config.get("samples"):

    rule summarize_samples:
        input:
            [run.manifest for run in RUNS],
        output:
            SAMPLES_SUMMARY,
        params:
            samples=[(run.sample, run.config["input"]) for run in RUNS],
        log:
            f"{OUT}/logs/summarize_samples.log",
        localrule: True
        run:
            import yaml

            rows = [
                (s, p, yaml.safe_load(open(m, encoding="utf-8")))
                for (s, p), m in zip(params.samples, input)
            ]
            Path(output[0]).write_text(summary_table(rows))
            Path(log[0]).write_text(f"{len(rows)} samples\n")
