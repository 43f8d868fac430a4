"""`seqapp study`: the simple-vs-gated comparison (a recipe over the synth, lm and kws tasks)."""
from __future__ import annotations


def register(groups, commands) -> None:
    study = commands.add_parser("study", help="simple vs gated cells: long-range tasks, gradient flow, LM and KWS")
    study.add_argument("--out", default="docs/gated", help="report.md, PNGs and every run's folder (runs/)")
    study.add_argument("--full", action="store_true", help="the larger grid: T up to 400, 3 seeds, longer runs")
    study.add_argument("--lm-data", default="data/tinyshakespeare/input.txt", help="text for the LM comparison")
    study.add_argument("--kws-data", default="data/speech_commands", help="Speech Commands for the KWS comparison")
    study.add_argument("--only", choices=["synth"], help="skip the LM and KWS comparisons")
    study.add_argument("--workers", type=int, default=2, help="runs at a time (one thread each)")
    study.set_defaults(handler=study_command)


def study_command(args) -> None:
    import os
    import platform
    import sys
    from pathlib import Path

    from ..errors import positive
    from .report import write_report
    from .run import DEFAULT, FULL, plan, run_all

    positive("--workers", args.workers)
    grid = FULL if args.full else DEFAULT
    lm_data = args.lm_data if args.only is None and Path(args.lm_data).is_file() else None
    kws_data = args.kws_data if args.only is None and Path(args.kws_data).is_dir() else None
    for name, given, found in (("--lm-data", args.lm_data, lm_data), ("--kws-data", args.kws_data, kws_data)):
        if args.only is None and found is None:
            print(f"note: {given} not found: that comparison is skipped (pass {name} PATH)", file=sys.stderr)
    out = Path(args.out)
    runs = plan(grid, lm_data, kws_data)
    print(f"{len(runs)} runs into {out / 'runs'} (finished ones are kept and skipped)")
    results = run_all(runs, out, args.workers)
    machine = f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores"
    report = write_report(results, grid, out, machine, args.workers)
    print(f"report: {report}")
