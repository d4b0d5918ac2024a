"""ExampleGen's memory against input size (issue 13, bounded memory): RawLogExampleGen alone on generated logs of
growing size, up to about 1 GB, each in a fresh child process.

    TF_USE_LEGACY_KERAS=1 python -m benchmarks.examplegen_memory                      # 100k, 500k, 4.5M rows (1 GB)
    TF_USE_LEGACY_KERAS=1 python -m benchmarks.examplegen_memory --rows 20000 50000 --no-doc   # quick check

The child is pipeline_scaling's "examplegen" child (benchmarks/pipeline_scaling.py): LocalDagRunner, SQLite MLMD,
RawLogExampleGen over one generated Criteo-layout file (data_gen.synthetic_criteo). Peak RSS is the child's
ru_maxrss; its growth is over the RSS after imports and pipeline set-up, before the run. ExampleGen streams lines,
so the growth should not follow the input: the check is that the largest input's growth is at most 1.5x the
smallest's (ratios in one run, so the machine's speed cancels). Writes "## ExampleGen memory against input size"
of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from benchmarks import pipeline_scaling, report  # noqa: E402 - after the path set-up

SECTION_HEADING = "## ExampleGen memory against input size (issue 13)"
DEFAULT_ROWS = (100_000, 500_000, 4_500_000)  # about 23 MB, 116 MB and 1 GB of generated Criteo-layout text
MAX_GROWTH_RATIO = 1.5
_MB = 1024 * 1024


def measure(rows: int, work_dir: str, timeout_s: float | None) -> dict[str, Any]:
    """Generates `rows` rows (reused when present) and runs RawLogExampleGen alone on them in a child process."""
    from data_gen import synthetic_criteo

    data_path = os.path.join(work_dir, "data", f"synthetic_criteo_{rows}.tsv")
    synthetic_criteo.generate(data_path, rows)
    run_dir = os.path.join(work_dir, "runs", f"rows_{rows}")
    print(f"[{rows:,} rows] {os.path.getsize(data_path) / _MB:,.0f} MB input; running RawLogExampleGen", flush=True)
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    child = pipeline_scaling._launch_child("examplegen", data_path, run_dir, rows, "in_memory",
                                           run_dir + ".log", timeout_s)
    # The component's own time in MLMD (registration to publication), without the child's imports.
    seconds = pipeline_scaling._seconds(child["components"]["RawLogExampleGen"])
    return {"rows": rows, "input_mb": os.path.getsize(data_path) / _MB, "seconds": seconds,
            "peak_rss_mb": child["ru_maxrss"] / _MB, "rss_before_mb": child["rss_before_run"] / _MB}


def render(results: list[dict[str, Any]], command: str) -> str:
    """The docs section: a table per size, and the growth check."""
    lines = [SECTION_HEADING, "", f"`{command}` on {pipeline_scaling.machine_description()}.", "",
             "| rows | input MB | RawLogExampleGen s | rows/s | RSS before the run MB | peak RSS MB | growth MB |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['input_mb']:,.1f} | {r['seconds']:,.1f} | {r['rows'] / r['seconds']:,.0f} "
                     f"| {r['rss_before_mb']:,.0f} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['peak_rss_mb'] - r['rss_before_mb']:,.0f} |")
    lines += ["", check(results), ""]
    return "\n".join(lines)


def check(results: list[dict[str, Any]]) -> str:
    """PASS when the largest input's RSS growth is at most MAX_GROWTH_RATIO x the smallest's."""
    first, last = results[0], results[-1]
    growth = [r["peak_rss_mb"] - r["rss_before_mb"] for r in (first, last)]
    ratio = growth[1] / max(growth[0], 1.0)
    verdict = "PASS" if ratio <= MAX_GROWTH_RATIO else "FAIL"
    return (f"- {verdict}: RSS growth {growth[1]:,.0f} MB at {last['input_mb']:,.0f} MB of input against "
            f"{growth[0]:,.0f} MB at {first['input_mb']:,.0f} MB ({ratio:.2f}x for {last['rows'] / first['rows']:.0f}x "
            f"the rows; target <= {MAX_GROWTH_RATIO}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--work-dir", help="data and runs (kept); default: a temporary folder")
    parser.add_argument("--timeout", type=float, help="kill a child run after this many seconds")
    parser.add_argument("--doc", default=os.path.join(REPO_ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    work_dir = os.path.abspath(args.work_dir or tempfile.mkdtemp(prefix="examplegen_memory_"))
    results = [measure(rows, work_dir, args.timeout) for rows in sorted(set(args.rows))]
    section = render(results, "TF_USE_LEGACY_KERAS=1 python -m benchmarks.examplegen_memory "
                     + shlex.join(sys.argv[1:] if argv is None else argv))
    print(section)
    if not args.no_doc:
        report.write_section(args.doc, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
