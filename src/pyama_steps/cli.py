"""Command-line interface: ``pyama-steps <command>``.

``generate``
    Write a synthetic time-lapse with ground truth (demo and test data).
``status``
    Show which FOVs of a run are ok, failed (with the error) or pending, and
    the segmentation checks' warnings and notes of each FOV.
``evaluate``
    Score a run against the generator's ground truth (algorithms.md §8).
``export-ctc``
    Write a run's tracks as Cell Tracking Challenge result folders.
``verify``
    Re-hash a run's outputs against their recorded sizes and checksums.
``inspect``
    Show the scenes, sizes, channels, pixel size and frame times of a file.
``init``
    Write a commented configuration for a file, with the channels guessed (and
    the rods segmentation when its first phase planes show dense rods).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _print_status(
    manifest: dict[str, Any], out_dir: Path, indent: str = ""
) -> tuple[str, list[int], int]:
    """Print one manifest's FOV lines; return its count line, failed FOVs, pending."""
    status = manifest["fov_status"]
    failed = []
    for fov, entry in status.items():
        state = entry["status"]
        if state == "ok":
            detail = f"{entry['n_cells']} cells ({entry['n_good']} good)"
            n_warn = len(entry.get("warnings", []))
            if n_warn:
                detail += f", {n_warn} segmentation warning{'s' * (n_warn > 1)}"
        elif state == "failed":
            where = out_dir / entry["log"]
            detail = f"step {entry['step']}: {entry['message']} (log: {where})"
            failed.append(int(fov))
        else:
            detail = "not run or interrupted"
        print(f"{indent}FOV {int(fov):>4}  {state:<8} {detail}")
        # the segmentation checks (algorithms.md §2.8), under their FOV
        for level, key in (("warning", "warnings"), ("note", "notes")):
            for item in entry.get(key, []):
                print(f"{indent}          {level}: {item['message']}")
    counts = {
        s: sum(1 for e in status.values() if e["status"] == s)
        for s in ("ok", "failed", "pending")
    }
    warned = sum(1 for e in status.values() if e.get("warnings"))
    line = f"{counts['ok']} ok, {counts['failed']} failed, {counts['pending']} pending"
    if warned:
        line += f"; {warned} FOV(s) with segmentation warnings (see above)"
    return line, failed, counts["pending"]


def _status(argv: Sequence[str]) -> int:
    import yaml

    from pyama_steps.io.paths import MANIFEST

    parser = argparse.ArgumentParser(
        prog="pyama-steps status",
        description="Show the status and segmentation warnings of every FOV of a run.",
    )
    parser.add_argument("output_dir", type=Path, help="the run's output_dir")
    args = parser.parse_args(argv)
    manifest_path = args.output_dir / MANIFEST
    # a sample sheet's output_dir: one folder with a manifest per sample
    samples = sorted(
        p.parent
        for p in args.output_dir.glob(f"*/{MANIFEST}")
        if not manifest_path.exists()
    )
    if not manifest_path.exists() and not samples:
        print(
            f"pyama-steps status: {manifest_path} does not exist; the run has not "
            "finished or failed yet (run snakemake first).",
            file=sys.stderr,
        )
        return 2
    unfinished = False
    for folder in samples or [args.output_dir]:
        manifest = yaml.safe_load((folder / MANIFEST).read_text(encoding="utf-8"))
        if samples:
            print(f"sample {folder.name} ({folder}):")
        line, failed, pending = _print_status(
            manifest, folder, indent="  " if samples else ""
        )
        unfinished = unfinished or bool(failed) or pending > 0
        print(f"sample {folder.name}: {line}" if samples else line)
        if failed:
            print(
                "Fix the cause, then rerun the same snakemake command: finished FOVs "
                "are skipped and only the\nmissing outputs of these FOVs are redone: "
                f"{', '.join(str(f) for f in failed)}."
            )
    return 1 if unfinished else 0


def _verify(argv: Sequence[str]) -> int:
    import time

    from pyama_steps.io.integrity import RECORDS, read_records, verify_files

    parser = argparse.ArgumentParser(
        prog="pyama-steps verify",
        description=(
            "Re-hash a run's outputs against the sizes and checksums its jobs "
            "recorded; report missing, truncated or edited files (exit 1)."
        ),
    )
    parser.add_argument("output_dir", type=Path, help="the run's output_dir")
    parser.add_argument(
        "--fix",
        action="store_true",
        help=(
            "remove the truncated or edited files, so that the next run of the "
            "same snakemake command redoes them and what depends on them"
        ),
    )
    args = parser.parse_args(argv)
    folders = [args.output_dir] if (args.output_dir / RECORDS).is_dir() else []
    folders += sorted(p.parent for p in args.output_dir.glob(f"*/{RECORDS}"))
    if not folders:
        print(
            f"pyama-steps verify: {args.output_dir} has no {RECORDS}/ folder: it is "
            "not a pyama-steps output_dir, or no job has finished there yet.",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    n_files = n_bytes = 0
    problems: list[tuple[Path, str, str]] = []
    for folder in folders:
        records = read_records(folder)
        n_files += len(records)
        n_bytes += sum(int(r["size_bytes"]) for r in records.values())
        problems += [
            (folder, rel, why)
            for rel, why in verify_files(out_dir=folder, records=records)
        ]
    for folder, rel, why in problems:
        prefix = "" if folder == args.output_dir else f"{folder.name}/"
        print(f"{prefix}{rel}: {why}")
    seconds = time.perf_counter() - start
    print(
        f"pyama-steps verify: {n_files} recorded file(s), {n_bytes / 1e6:.1f} MB in "
        f"{seconds:.1f} s: {len(problems)} problem{'s' * (len(problems) != 1)}"
    )
    if args.fix and problems:
        removed = 0
        for folder, rel, why in problems:
            if why != "missing":
                (folder / rel).unlink()
                removed += 1
        print(
            f"pyama-steps verify: removed {removed} file(s); rerun the same snakemake "
            "command to redo them (and what depends on them)."
        )
    elif problems:
        print(
            "Rerun with --fix to remove the damaged files, then the same snakemake "
            "command: missing files are redone with what depends on them."
        )
    return 1 if problems else 0


def _inspect(argv: Sequence[str]) -> int:
    import json

    from pyama_steps.io import InputError
    from pyama_steps.run.describe import describe_file, format_description

    parser = argparse.ArgumentParser(
        prog="pyama-steps inspect",
        description="Show what a microscopy file holds (metadata only, fast).",
    )
    parser.add_argument("file", help="ND2, CZI, OME-TIFF or any file bioio reads")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        desc = describe_file(args.file)
    except InputError as e:
        print(f"pyama-steps inspect: {e}", file=sys.stderr)
        return 2
    print(json.dumps(desc, indent=1) if args.json else format_description(desc))
    return 0


def _init(argv: Sequence[str]) -> int:
    from pyama_steps.io import InputError
    from pyama_steps.io.paths import base_name
    from pyama_steps.run.describe import (
        check_phase_planes,
        describe_file,
        looks_like_phase,
        render_config,
    )

    parser = argparse.ArgumentParser(
        prog="pyama-steps init",
        description=(
            "Write a commented configuration for a microscopy file (metadata, "
            "and the first and last phase plane of FOV 0)."
        ),
    )
    parser.add_argument("file", help="ND2, CZI, OME-TIFF or any file bioio reads")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="YAML to write"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="output_dir to set (default: results/<input base name>)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite --output")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(
            f"pyama-steps init: {args.output} exists; use --force to overwrite it",
            file=sys.stderr,
        )
        return 2
    try:
        desc = describe_file(args.file)
        phase_check = check_phase_planes(args.file, desc)
    except InputError as e:
        print(f"pyama-steps init: {e}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # one experiment per output folder: a folder named after the input
    output_dir = args.output_dir or f"results/{base_name(args.file)}"
    text = render_config(desc, output_dir=output_dir, phase_check=phase_check)
    args.output.write_text(text, encoding="utf-8")
    names = desc["scenes"][0]["channel_names"] if desc["scenes"] else []
    if not any(looks_like_phase(n) for n in names):
        listing = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))
        print(
            "pyama-steps init: warning: no channel name looks like phase contrast, "
            f"bright field or DIC ({listing}); channel 0 was written as channels.pc. "
            "The segmentation needs a transmitted-light channel: check channels.pc "
            f"in {args.output} (a fluorescence channel there makes the run warn "
            "that the phase-contrast channel looks like fluorescence).",
            file=sys.stderr,
        )
    print(f"wrote {args.output}; check the lines marked CHECK, then run:")
    print(f"  snakemake --cores 8 --configfile {args.output}")
    print("and for the QC figures (targets such as qc go before the options):")
    print(f"  snakemake qc --cores 8 --configfile {args.output}")
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"--size {text!r} is invalid: give N (square) or YxX in px, e.g. 512 or "
            "576x640."
        )
    y = int(match.group(1))
    x = int(match.group(2)) if match.group(2) else y
    return y, x


def _generate_parser() -> argparse.ArgumentParser:
    from pyama_steps.validation.synth import PRESETS
    from pyama_steps.validation.synth_io import FORMATS

    parser = argparse.ArgumentParser(
        prog="pyama-steps generate",
        description=(
            "Write a synthetic phase-contrast + fluorescence time-lapse with ground "
            "truth (see pyama_steps.validation.synth)."
        ),
    )
    parser.add_argument("out_dir", type=Path, help="output directory")
    parser.add_argument(
        "--preset", choices=PRESETS, default="demo", help="difficulty preset"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0)")
    parser.add_argument(
        "--name", default=None, help="base name of the files (default: the preset)"
    )
    parser.add_argument(
        "--format", dest="fmt", choices=FORMATS, default="ome-tiff", help="image format"
    )
    parser.add_argument("--n-fov", type=int, default=None, help="number of FOVs")
    parser.add_argument("--n-frames", type=int, default=None, help="frames per FOV")
    parser.add_argument(
        "--size",
        type=_parse_size,
        action="append",
        default=None,
        metavar="N|YxX",
        help="frame size in px, rows x columns; repeat to give FOVs different sizes",
    )
    parser.add_argument(
        "--n-fl-channels", type=int, default=None, help="fluorescence channels (0-3)"
    )
    parser.add_argument(
        "--no-background-truth",
        action="store_true",
        help="do not write the true background stacks",
    )
    parser.add_argument(
        "--compress", action="store_true", help="compress the image pixels"
    )
    return parser


def _generate(argv: Sequence[str]) -> int:
    """Write a synthetic dataset and print its paths (exit 2 on bad arguments)."""
    from pyama_steps.validation.synth import preset
    from pyama_steps.validation.synth_io import write_dataset

    args = _generate_parser().parse_args(list(argv))
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.n_fov is not None:
        overrides["n_fov"] = args.n_fov
    if args.n_frames is not None:
        overrides["n_frames"] = args.n_frames
    if args.size:
        overrides["frame_sizes"] = tuple(args.size)
    if args.n_fl_channels is not None:
        overrides["n_fl_channels"] = args.n_fl_channels
    if args.no_background_truth:
        overrides["write_background"] = False
    params = preset(args.preset, **overrides)
    name = args.name if args.name is not None else args.preset
    image = write_dataset(
        args.out_dir, params, name=name, fmt=args.fmt, compress=args.compress
    )
    truth_dir = image.parent / f"{name}_truth"
    print(f"image: {image}")
    print(f"truth: {truth_dir}")
    return 0


def _evaluate(argv: Sequence[str]) -> int:
    """Score a run against the truth and print the table (exit 2 on bad inputs)."""
    import json

    from pyama_steps.io import atomic_write_text
    from pyama_steps.io.paths import parse_fov_list
    from pyama_steps.validation.evaluate import evaluate_run, format_table

    parser = argparse.ArgumentParser(
        prog="pyama-steps evaluate",
        description=(
            "Compare a run with the synthetic generator's ground truth "
            "(algorithms.md §8)."
        ),
    )
    parser.add_argument("truth_dir", type=Path, help="the '<name>_truth' directory")
    parser.add_argument("output_dir", type=Path, help="the run's output_dir")
    parser.add_argument("--json", type=Path, default=None, help="also write JSON here")
    parser.add_argument("--markdown", action="store_true", help="markdown tables")
    parser.add_argument(
        "--fovs", type=parse_fov_list, default=None, help="FOVs to evaluate, e.g. 0,2"
    )
    parser.add_argument("--iou-threshold", type=float, default=0.5)
    parser.add_argument("--min-signal-fraction", type=float, default=0.05)
    parser.add_argument(
        "--no-ctc",
        action="store_true",
        help="skip the Cell Tracking Challenge measures (py-ctcmetrics)",
    )
    args = parser.parse_args(list(argv))
    try:
        evaluation = evaluate_run(
            args.truth_dir,
            args.output_dir,
            iou_threshold=args.iou_threshold,
            min_signal_fraction=args.min_signal_fraction,
            fovs=args.fovs,
            ctc=not args.no_ctc,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"pyama-steps evaluate: error: {e}", file=sys.stderr)
        return 2
    print(format_table(evaluation, markdown=args.markdown), end="")
    if args.json is not None:
        text = json.dumps(
            evaluation.to_dict(), indent=1, sort_keys=False, ensure_ascii=True
        )
        atomic_write_text(args.json, text + "\n")
    return 0


def _export_ctc(argv: Sequence[str]) -> int:
    """Write a run's tracks as CTC folders and print them (exit 2 on bad inputs)."""
    from pyama_steps.io.paths import parse_fov_list
    from pyama_steps.validation.ctc import (
        check_export_inputs,
        export_run,
        export_truth,
    )

    parser = argparse.ArgumentParser(
        prog="pyama-steps export-ctc",
        description=(
            "Write a run's tracks as Cell Tracking Challenge result folders "
            "(DEST/fov_NNN/maskTTT.tif + res_track.txt), e.g. to score them "
            "with any CTC tool or open them in napari."
        ),
    )
    parser.add_argument("output_dir", type=Path, help="the run's output_dir")
    parser.add_argument("dest", type=Path, help="folder to write fov_NNN/ into")
    parser.add_argument(
        "--fovs", type=parse_fov_list, default=None, help="FOVs to export, e.g. 0,2"
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        metavar="TRUTH_DIR",
        help="also write the generator's truth as DEST/fov_NNN_GT/TRA/",
    )
    args = parser.parse_args(list(argv))
    try:
        check_export_inputs(args.output_dir, fovs=args.fovs, truth=args.truth)
        folders = export_run(args.output_dir, args.dest, fovs=args.fovs)
        truths = (
            export_truth(args.truth, args.dest, fovs=args.fovs)
            if args.truth is not None
            else []
        )
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"pyama-steps export-ctc: error: {e}", file=sys.stderr)
        return 2
    for folder in [*folders, *truths]:
        print(f"wrote {folder}")
    if truths:
        print(
            "score one FOV with py-ctcmetrics: ctc_evaluate "
            f"--res {folders[0]} --gt {truths[0]}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pyama-steps`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "generate",
        "status",
        "verify",
        "evaluate",
        "export-ctc",
        "inspect",
        "init",
    }
    if not args or args[0] in {"-h", "--help"} or args[0] not in commands:
        print(
            "usage: pyama-steps "
            "{inspect,init,generate,status,verify,evaluate,export-ctc} "
            "...\n\n"
            "  inspect FILE [--json]         scenes, sizes, channels, frame times\n"
            "  init FILE -o CONFIG.yaml      write a commented config for FILE\n"
            "  generate OUT_DIR              write a synthetic time-lapse with truth\n"
            "  status OUTPUT_DIR             FOVs ok / failed / pending, and warnings\n"
            "  verify OUTPUT_DIR [--fix]     re-hash the outputs: missing, truncated, "
            "edited\n"
            "  evaluate TRUTH_DIR OUTPUT_DIR score a run against ground truth\n"
            "  export-ctc OUTPUT_DIR DEST    write tracks as Cell Tracking Challenge "
            "folders",
            file=sys.stderr if args and args[0] not in {"-h", "--help"} else sys.stdout,
        )
        return 0 if args and args[0] in {"-h", "--help"} else 2
    command, rest = args[0], args[1:]
    if command == "generate":
        return _generate(rest)
    if command == "inspect":
        return _inspect(rest)
    if command == "init":
        return _init(rest)
    if command == "verify":
        return _verify(rest)
    if command == "evaluate":
        return _evaluate(rest)
    if command == "export-ctc":
        return _export_ctc(rest)
    return _status(rest)


if __name__ == "__main__":
    sys.exit(main())
