"""The plots of docs/benchmarks.md: time and peak RSS of a full Square orders sync against size.

    python -m logikal_square_sync_tests.benchmarks.plots [--sizes 10000,100000,1000000]
        [--dlt-sizes 10000,100000] [--replot]

Runs `square_full_sync` once per size (each its own sandbox, scratch database
and child processes), keeps the figures in docs/benchmarks/results.json and
draws docs/benchmarks/time.png and docs/benchmarks/rss.png with the limit
(fetch every page + COPY of the same rows, measured in the same run) drawn
alongside, and in time.png dlt's `rest_api` source loading the same orders in the
same run, at the sizes of `--dlt-sizes` (at 1M it would take ~20 minutes; empty for
none). `--replot` redraws from the stored figures without measuring; runs
stored without dlt's figures have no point on its line.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OUT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
RESULTS = OUT / "results.json"
RSS_TARGET_MB = 300


def measure(sizes: list[int], dlt_sizes: set[int]) -> dict[str, Any]:
    runs = []
    for orders in sizes:
        dlt = ["--dlt"] if orders in dlt_sizes else []
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "logikal_square_sync_tests.benchmarks.square_full_sync",
                    "--orders",
                    str(orders),
                    "--no-incremental",
                    "--json",
                    out.name,
                    *dlt,
                ],
                check=True,
            )
            runs.append(json.loads(Path(out.name).read_text())["benchmark"])
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
        "runs": runs,
    }


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    runs = sorted(results["runs"], key=lambda run: run["orders"])
    orders = [run["orders"] for run in runs]
    note = f"measured {results['measured_at']} on {results['machine']}"

    fig, ax = plt.subplots(figsize=(7, 4.5))
    # Each with its ratio to the limit beside its points; dlt only where it was measured, in a
    # colour of its own, so that the other lines keep theirs in plots without it.
    dlt_runs = [run for run in runs if "dlt" in run]
    for label, marker, color, measured, seconds, ratio in (
        ("full sync (sync_orders, no Dagster)", "o", None, runs, lambda r: r["sync"]["seconds"], "ratio"),
        ("dlt rest_api, merge on id", "^", "C3", dlt_runs, lambda r: r["dlt"]["seconds"], "dlt_ratio"),
    ):
        if not measured:
            continue
        points = [r["orders"] for r in measured], [seconds(r) for r in measured]
        ax.plot(*points, marker=marker, color=color, label=label)
        for run in measured:
            ax.annotate(
                f"{run[ratio]:.2f}×", (run["orders"], seconds(run)), textcoords="offset points", xytext=(6, 6)
            )
    ax.plot(orders, [r["limit_seconds"] for r in runs], "s--", label="limit: fetch + COPY")
    ax.plot(orders, [r["fetch"]["seconds"] for r in runs], ":", color="grey", label="fetch alone")
    ax.plot(orders, [r["copy"]["seconds"] for r in runs], "-.", color="grey", label="COPY alone")
    ax.set(xscale="log", yscale="log", xlabel="orders (~3 line items each)", ylabel="seconds")
    _save(fig, ax, "Square orders full sync into PostgreSQL: time", note, "time.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(orders, [r["sync"]["peak_rss_mb"] for r in runs], "o-", label="full sync process")
    ax.plot(orders, [r["fetch"]["peak_rss_mb"] for r in runs], "s--", label="limit: fetch process")
    ax.axhline(RSS_TARGET_MB, color="red", linewidth=1, label=f"target {RSS_TARGET_MB} MB")
    ax.set(xscale="log", xlabel="orders (~3 line items each)", ylabel="peak RSS, MB", ylim=(0, None))
    _save(fig, ax, "Square orders full sync into PostgreSQL: peak RSS", note, "rss.png")


def _save(fig: Figure, ax: Axes, title: str, note: str, name: str) -> None:
    """Titles the chart, adds its grid, legend and the measurement note, and saves it as OUT/`name`."""
    import matplotlib.pyplot as plt

    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, note, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(OUT / name, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--dlt-sizes", default="10000,100000", help="the sizes at which dlt is measured too (empty: none)"
    )
    parser.add_argument("--replot", action="store_true", help="redraw from docs/benchmarks/results.json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.replot:
        results = json.loads(RESULTS.read_text())
    else:
        results = measure(
            [int(size) for size in args.sizes.split(",")],
            {int(size) for size in args.dlt_sizes.split(",") if size},
        )
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    print(f"wrote {OUT / 'time.png'} and {OUT / 'rss.png'}")


if __name__ == "__main__":
    main()
