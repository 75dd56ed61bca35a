"""Run the benchmarks: ``python -m benchmarks [--smoke] [--only NAME,...] [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import structlog

from . import footprint, idle, latency, read_cost, reload_cost, sidecar

BENCHMARKS: dict[str, ModuleType] = {
    "latency": latency,
    "read": read_cost,
    "reload": reload_cost,
    "idle": idle,
    "footprint": footprint,
    "sidecar": sidecar,
}

Column = tuple[str, Callable[[dict[str, Any]], str]]


def table(rows: list[dict[str, Any]], columns: list[Column], *, markdown: bool) -> str:
    """One benchmark's rows, as aligned text or as a Markdown table."""
    header = ["", *(name for name, _ in columns)]
    body = [[row["what"], *(show(row) for _, show in columns)] for row in rows]
    if markdown:
        lines = [header, ["---"] + ["---:"] * len(columns), *body]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in (header, *body)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only check they run")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="which, comma-separated")
    parser.add_argument("--json", default="results.json", help="where to write the results")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - BENCHMARKS.keys()
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    # secretwatch logs every load and change: the tables are the output
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    for name in chosen:
        module = BENCHMARKS[name]
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows = module.run(smoke=args.smoke)
        results += rows
        met = [  # tiny sizes say nothing of the targets
            {"target": target, "measured": measured, "met": ok}
            for target, measured, ok in ([] if args.smoke else module.targets(rows))
        ]
        verdicts += met
        print(f"\n{'### ' if args.markdown else ''}{rows[0]['benchmark']}\n", flush=True)
        print(table(rows, module.COLUMNS, markdown=args.markdown))
        if met:
            print()
        for verdict in met:
            mark = "met" if verdict["met"] else "MISSED"
            line = f"target {verdict['target']}: {verdict['measured']}, {mark}"
            print(f"- {line}" if args.markdown else line, flush=True)
    machine = {
        "python": platform.python_version(),
        "system": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "smoke": args.smoke,
        "seconds": round(time.monotonic() - started, 1),
    }
    with open(args.json, "w") as file:
        json.dump({"machine": machine, "targets": verdicts, "results": results}, file, indent=2)
    print(
        f"\nPython {machine['python']} on {machine['system']}, {machine['cpus']} CPUs; "
        f"{machine['seconds']} s{' (smoke: tiny sizes)' if args.smoke else ''}; "
        f"results in {args.json}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
