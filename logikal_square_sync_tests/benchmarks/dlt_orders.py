"""The dlt comparison of the Square orders benchmark (`square_full_sync --dlt`).

dlt is not a dependency of the project: its pinned, hash-checked requirements
(`dlt-requirements.txt`) go into a virtualenv of their own, `.venv-dlt` in the project root,
made on first use by `dlt_python()`. That virtualenv's python runs this module as a child
step, so the module needs only the standard library until `load_orders` imports dlt, and
imports nothing of the project (whose dependencies are not installed there) but `peak_rss`.

The pipeline is dlt's declarative `rest_api` source, no code of ours around the requests:
a resource per group of at most 10 locations posts the sync's own SearchOrders body
(`search_body`: `updated_at` range sorted ascending, 1,000 orders a page, no entries) to
`/v2/orders/search` with bearer auth, and pages as Square does, with rest_api's
`JSONResponseCursorPaginator(cursor_path="cursor", cursor_body_path="cursor")`: the next page
is the same body with the response's `cursor` in it, until a response has none. The range
starts at dlt's incremental start value on `updated_at`, as a dlt user would keep one.
Loaded into the benchmark's scratch database with `write_disposition="merge"` on `id` and dlt's
defaults otherwise (insert-values load files; the nested `line_items` normalised into the
child table `orders__line_items`).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from logikal_square_sync_tests.benchmarks.peak_rss import peak_rss_mb

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("dlt-requirements.txt")
VENV = ROOT / ".venv-dlt"
DATASET = "square_dlt"
ORDERS_TABLE = "orders"


def dlt_python() -> str:
    """The python of `.venv-dlt`, made (or remade, when the requirements changed) with dlt installed."""
    python = VENV / "bin" / "python"
    # The venv keeps the hash of the requirements it was made from: a new pin makes a new venv.
    stamp = VENV / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    print(f"  making {VENV} with {REQUIREMENTS.name}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted)
    return str(python)


def load_orders(url: str, token: str, warehouse: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Runs the pipeline once on an empty dataset; its time, rows per table and dlt's version.

    `warehouse` is a plain `postgresql://` URL; `spec` holds `bodies` (the sync's SearchOrders
    bodies, one per location group) and `square_version`.
    """
    # No usage reports from a benchmark; set before dlt reads its configuration.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
    from dlt.sources.rest_api import rest_api_source

    resources: list[Any] = []
    for n, body in enumerate(spec["bodies"]):
        updated_at = body["query"]["filter"]["date_time_filter"]["updated_at"]
        initial_value = updated_at["start_at"]
        updated_at["start_at"] = "{incremental.start_value}"
        endpoint = {
            "path": "v2/orders/search",
            "method": "POST",
            "json": body,
            "data_selector": "orders",
            "paginator": JSONResponseCursorPaginator(cursor_path="cursor", cursor_body_path="cursor"),
            "incremental": {"cursor_path": "updated_at", "initial_value": initial_value},
        }
        resources.append({"name": f"orders_{n}", "table_name": ORDERS_TABLE, "endpoint": endpoint})
    source = rest_api_source(
        {
            "client": {
                "base_url": url,
                "auth": {"type": "bearer", "token": token},
                "headers": {"Square-Version": spec["square_version"]},
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": resources,
        }
    )
    # A pipeline's working directory (state, load packages) of its own: nothing kept from a past run.
    with tempfile.TemporaryDirectory() as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name="square_orders_benchmark",
            destination=dlt.destinations.postgres(credentials=warehouse),
            dataset_name=DATASET,
            pipelines_dir=pipelines_dir,
        )
        started = time.perf_counter()
        pipeline.run(source)
        seconds = time.perf_counter() - started
        normalized = pipeline.last_trace.last_normalize_info
        assert normalized is not None
        counts = normalized.row_counts.items()
        rows = {table: count for table, count in counts if not table.startswith("_dlt")}
    return {"seconds": seconds, "rows": rows, "dataset": DATASET, "dlt_version": dlt.__version__}


def main() -> None:
    """`--step dlt URL TOKEN WAREHOUSE SPEC`, as `square_full_sync.child_of` runs it."""
    url, token, warehouse, spec = sys.argv[3:7]
    result = load_orders(url, token, warehouse, json.loads(spec))
    # As square_full_sync.report_child_result, which this venv cannot import (no SQLAlchemy here).
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = peak_rss_mb()
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
