"""Run the benchmarks: ``python -m benchmarks [--smoke] [--only NAME,...] [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

from . import latency, read_cost, reload_cost

BENCHMARKS = {"latency": latency.run, "read": read_cost.run, "reload": reload_cost.run}


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        if row.get("unit") == "ms":
            figures = "   ".join(f"{key} {row[key]:8.1f} ms" for key in ("p50", "p95", "p99"))
            lines.append(f"{row['benchmark']:<12} {row['what']:<46} {figures}")
            continue
        ratio = row.get("x_floor", row.get("x_bare"))
        peer = "x dict" if "x_floor" in row else "x bare read"
        lines.append(
            f"{row['benchmark']:<12} {row['what']:<46} {row['seconds'] * 1e6:>12.3f} µs"
            f"   {ratio:>10.2f} {peer}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: only check they run")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="which, comma-separated")
    parser.add_argument("--json", default="results.json", help="where to write the results")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - BENCHMARKS.keys()
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for name in chosen:
        rows += BENCHMARKS[name](smoke=args.smoke)
    machine = {
        "python": platform.python_version(),
        "system": platform.platform(),
        "cpus": __import__("os").cpu_count(),
        "smoke": args.smoke,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(table(rows))
    with open(args.json, "w") as file:
        json.dump({"machine": machine, "results": rows}, file, indent=2)
    print(f"\n{machine}\nwritten to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
