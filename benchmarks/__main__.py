"""``python -m benchmarks run --quick | --full | --smoke``: run the suite and write its results;
``python -m benchmarks conditions [--quick | --full]``: the transports through an emulated network.

Results go to ``benchmarks/results/<mode>/`` (results.json, report.md, PNG plots); a full run also
rewrites ``benchmarks/RESULTS.md``. ``python -m benchmarks report DIR`` redraws a report from its
results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from . import report
from .clients import CLIENTS
from .run import PLANS, ROOT, Runner, save


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["conditions"]:  # its own options: --quick (default) or --full
        from .conditions import main as conditions

        return conditions(args_in[1:])
    if args_in[:1] == ["progress"]:  # job progress: its own options (python -m benchmarks progress --help)
        from . import progress

        return progress.main(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the benchmarks")
    mode = run.add_mutually_exclusive_group()
    for name in PLANS:
        mode.add_argument(f"--{name}", dest="mode", action="store_const", const=name)
    run.add_argument("--stacks", help="comma-separated: h11,standard")
    run.add_argument("--targets", help=f"comma-separated, from {','.join(CLIENTS)}")
    run.add_argument("--only", help="comma-separated measurements: A (RTT), B (idle), C (fan-out), H (hold)")
    run.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<mode>)")
    sub.add_parser("progress", help="job progress: publish rate and delay to 1,000 clients (--quick, --full)")
    show = sub.add_parser("report", help="redraw the report of a results folder")
    show.add_argument("folder", type=Path)
    args = parser.parse_args(argv)

    if args.command == "report":
        results = json.loads((args.folder / "results.json").read_text())
        print(report.write(results, args.folder))
        return 0
    plan = PLANS[args.mode or "quick"]
    changes: dict[str, Any] = {}
    if args.stacks:
        changes["stacks"] = tuple(args.stacks.split(","))
        changes["hold_stacks"] = tuple(s for s in plan.hold_stacks if s in changes["stacks"]) or changes["stacks"][:1]
    if args.targets:
        unknown = [t for t in args.targets.split(",") if t not in CLIENTS]
        if unknown:
            parser.error(f"unknown targets {unknown}")
        changes["targets"] = tuple(t for t in CLIENTS if t in args.targets.split(","))
    if args.only:
        changes["only"] = tuple(args.only.upper().split(","))
    plan = dataclasses.replace(plan, **changes)
    out = args.out or ROOT / "results" / plan.name
    results = asyncio.run(Runner(plan, out).run())
    data = dataclasses.asdict(results)
    save(results, out)
    path = report.write(data, out)
    if plan.name == "full" and not args.out and not changes:
        report.write(data, out, markdown_path=ROOT / "RESULTS.md")
    print(path.read_text())
    failed = [v for v in report.bars(data) if v["ok"] is False]
    print(f"\n{len(failed)} bars not met; results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
