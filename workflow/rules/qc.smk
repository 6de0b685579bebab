# QC (not part of the default target): per-FOV figures and the run summary,
# tagged for Snakemake's HTML report. Build them, then the report:
#
#   snakemake --cores 2 qc && snakemake --report report.html qc
#
# (the report collects the report()-tagged outputs of the jobs of the targets
# it is given, so `qc` is named there too).
#
# After a run in which FOVs failed, the manifest on disk (written by the
# onerror hook) lists them: `qc` then leaves them out, since their figures
# cannot be drawn, and the summary lists them with the failed step and error
# line. The default target retries them; `qc` after that includes them again.

QC = f"{OUT}/qc"
QC_OVERLAY = f"{QC}/fov_{{fov}}_overlay.png"
QC_BACKGROUND = f"{QC}/fov_{{fov}}_background.png"
QC_TRACES = f"{QC}/fov_{{fov}}_traces.png"
QC_SUMMARY_HTML = f"{QC}/summary.html"
QC_SUMMARY_TSV = f"{QC}/summary.tsv"
# time points of the image figures: first, last and evenly spaced between
QC_TIMEPOINTS = 4


def qc_failed_fovs():
    """FOV ids (NNN) that the manifest on disk lists as failed."""
    import yaml

    # read on every parse of the workflow: the C loader keeps a manifest of
    # thousands of FOVs quick
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(MANIFEST, encoding="utf-8") as fh:
            status = yaml.load(fh, Loader=loader)["fov_status"]
        failed = {f"{int(k):03d}" for k, v in status.items() if v["status"] == "failed"}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return []
    return [f for f in FOV_IDS if f in failed]


QC_FAILED = qc_failed_fovs()
QC_FOV_IDS = [f for f in FOV_IDS if f not in QC_FAILED]


def get_qc_fov_input(wildcards):
    fov = wildcards.fov
    inputs = {
        "pc": stack("pc", PC, fov),
        "labeled": stack("seg_labeled", PC, fov),
        "traces": fov_csv("traces", fov),
        "fl": [stack("fl", c, fov) for c in FL],
    }
    # the background shown: the written surface, else raw - corrected, else
    # recomputed from raw stack and mask with the same function (§3)
    if BG["write_background"]:
        inputs["background"] = [stack("fl_background", c, fov) for c in FL]
    elif BG["write_corrected"]:
        inputs["corrected"] = [stack("fl_corrected", c, fov) for c in FL]
    elif FL:
        inputs["seg"] = stack("seg", PC, fov)
    return inputs


rule qc_fov:
    input:
        unpack(get_qc_fov_input),
    output:
        overlay=report(
            QC_OVERLAY,
            caption="../report/qc_overlay.rst",
            category="FOV {fov}",
            labels={"FOV": "{fov}", "figure": "1 cells and track ids"},
        ),
        background=report(
            QC_BACKGROUND,
            caption="../report/qc_background.rst",
            category="FOV {fov}",
            labels={"FOV": "{fov}", "figure": "2 background"},
        ),
        traces=report(
            QC_TRACES,
            caption="../report/qc_traces.rst",
            category="FOV {fov}",
            labels={"FOV": "{fov}", "figure": "3 traces"},
        ),
    params:
        fov=lambda wc: int(wc.fov),
        fl=FL,
        channel_names={c: PLAN.channel_names[c] for c in [PC, *FL]},
        times_min=lambda wc: list(PLAN.fov(int(wc.fov)).times_min),
        n_timepoints=QC_TIMEPOINTS,
        # only needed to recompute the background when no stack was written
        background=None if background_written() else BG,
    log:
        logfile("qc_fov"),
    benchmark:
        benchfile("qc_fov")
    threads: 1
    resources:
        # matplotlib (~150 MB) + a few frames of each stack and their RGBA
        # outline images
        mem_mb=lambda wc: int(
            400 + (120 + 40 * len(FL)) * frame_pixels(wc) / 2**20
        ),
        # a few frames, unless the background is recomputed (all frames)
        runtime=lambda wc: 5 + (0 if background_written() else runtime_min(60)(wc)),
    script:
        "../scripts/qc_fov.py"


def get_qc_summary_input(wildcards):
    # With failed FOVs the manifest of that run is read as it is: as an input
    # it would be an output of aggregate_results, which retries them first.
    if QC_FAILED:
        return {"metadata": METADATA}
    return {"manifest": MANIFEST, "metadata": METADATA}


rule qc_summary:
    input:
        unpack(get_qc_summary_input),
    output:
        html=report(
            QC_SUMMARY_HTML,
            caption="../report/qc_summary.rst",
            category="Run summary",
            labels={"table": "FOVs, cells, good cells, frames, failures"},
        ),
        tsv=QC_SUMMARY_TSV,
    params:
        manifest=MANIFEST,
    log:
        f"{OUT}/logs/qc_summary/qc_summary.log",
    benchmark:
        f"{OUT}/benchmarks/qc_summary/qc_summary.tsv"
    threads: 1
    resources:
        mem_mb=300,
        runtime=5,
    script:
        "../scripts/qc_summary.py"


# Target: the figures of every FOV that did not fail, and the summary.
rule qc:
    localrule: True
    input:
        expand(QC_OVERLAY, fov=QC_FOV_IDS),
        expand(QC_BACKGROUND, fov=QC_FOV_IDS),
        expand(QC_TRACES, fov=QC_FOV_IDS),
        QC_SUMMARY_HTML,
        QC_SUMMARY_TSV,
