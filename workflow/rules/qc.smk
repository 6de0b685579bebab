# QC (not part of the default target): per-FOV figures and the run summary,
# tagged for Snakemake's HTML report. Build them, then the report:
#
#   snakemake qc --cores 2 && snakemake qc --report report.html
#
# (the report collects the report()-tagged outputs of the jobs of the targets
# it is given, so `qc` is named there too).
#
# After a run in which FOVs failed, the manifest on disk (written by the
# onerror hook) lists them: `qc` then leaves them out, since their figures
# cannot be drawn, and the summary lists them with the failed step and error
# line. The default target retries them; `qc` after that includes them again.

# time points of the image figures: first, last and evenly spaced between
QC_TIMEPOINTS = 4


def qc_paths(run):
    qc = f"{run.out}/qc"
    return {
        "overlay": f"{qc}/fov_{{fov}}_overlay.png",
        "background": f"{qc}/fov_{{fov}}_background.png",
        "traces": f"{qc}/fov_{{fov}}_traces.png",
        "html": f"{qc}/summary.html",
        "tsv": f"{qc}/summary.tsv",
    }


def qc_failed_fovs(run):
    """FOV ids (NNN) that the manifest on disk lists as failed."""
    import yaml

    # read on every parse of the workflow: the C loader keeps a manifest of
    # thousands of FOVs quick
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(run.manifest, encoding="utf-8") as fh:
            status = yaml.load(fh, Loader=loader)["fov_status"]
        failed = {f"{int(k):03d}" for k, v in status.items() if v["status"] == "failed"}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return []
    return [f for f in run.fov_ids if f in failed]


def get_qc_fov_input(run):
    def inputs(wildcards):
        fov = wildcards.fov
        files = {
            "pc": run.stack("pc", run.pc, fov),
            "labeled": run.stack("seg_labeled", run.pc, fov),
            "traces": run.fov_csv("traces", fov),
            "fl": [run.stack("fl", c, fov) for c in run.fl],
            # the background shown: raw - corrected from the model (§3.6)
            "model": [run.stack("fl_background_model", c, fov) for c in run.fl],
        }
        return files

    return inputs


def get_qc_summary_input(run, failed):
    # With failed FOVs the manifest of that run is read as it is: as an input
    # it would be an output of aggregate_results, which retries them first.
    if failed:
        return {"metadata": run.metadata}
    return {"manifest": run.manifest, "metadata": run.metadata}


QC_TARGETS = []
for run in RUNS:
    _qc = qc_paths(run)
    _failed = qc_failed_fovs(run)
    _ok = [f for f in run.fov_ids if f not in _failed]
    # "<sample> / FOV 000": no ": " in a category name, which the report turns
    # into an rst link target (everything before ": " would be its name, the
    # same for every category of a sample: "Duplicate explicit target name")
    _label = "" if run.sample is None else f"{run.sample} / "

    rule:
        name:
            run.name("qc_fov")
        input:
            unpack(get_qc_fov_input(run)),
        output:
            overlay=report(
                _qc["overlay"],
                caption="../report/qc_overlay.rst",
                category=_label + "FOV {fov}",
                labels={"FOV": "{fov}", "figure": "1 cells and track ids"},
            ),
            background=report(
                _qc["background"],
                caption="../report/qc_background.rst",
                category=_label + "FOV {fov}",
                labels={"FOV": "{fov}", "figure": "2 background"},
            ),
            traces=report(
                _qc["traces"],
                caption="../report/qc_traces.rst",
                category=_label + "FOV {fov}",
                labels={"FOV": "{fov}", "figure": "3 traces"},
            ),
        params:
            fov=lambda wc: int(wc.fov),
            fl=run.fl,
            channel_names=run.channel_names(),
            times_min=run.times,
            n_timepoints=QC_TIMEPOINTS,
            background=run.bg,
        log:
            run.log("qc_fov"),
        benchmark:
            run.bench("qc_fov")
        threads: 1
        resources:
            # matplotlib (~150 MB) + a few frames of each stack and their RGBA
            # outline images
            mem_mb=run.per_fov(
                lambda wc, run=run: int(
                    400 + (120 + 40 * len(run.fl)) * run.frame_pixels(wc) / 2**20
                )
            ),
            # a few frames of each stack
            runtime=5,
        script:
            "../scripts/qc_fov.py"

    rule:
        name:
            run.name("qc_summary")
        input:
            **get_qc_summary_input(run, _failed),
        output:
            html=report(
                _qc["html"],
                caption="../report/qc_summary.rst",
                category=_label + "Run summary",
                labels={"table": "FOVs, cells, frames, failures, warnings"},
            ),
            tsv=_qc["tsv"],
        params:
            manifest=run.manifest,
        log:
            f"{run.out}/logs/qc_summary/qc_summary.log",
        benchmark:
            f"{run.out}/benchmarks/qc_summary/qc_summary.tsv"
        threads: 1
        resources:
            mem_mb=300,
            runtime=5,
        script:
            "../scripts/qc_summary.py"

    QC_TARGETS += expand(_qc["overlay"], fov=_ok)
    QC_TARGETS += expand(_qc["background"], fov=_ok)
    QC_TARGETS += expand(_qc["traces"], fov=_ok)
    QC_TARGETS += [_qc["html"], _qc["tsv"]]


# Target: the figures of every FOV that did not fail, and the summaries.
rule qc:
    localrule: True
    input:
        QC_TARGETS,
