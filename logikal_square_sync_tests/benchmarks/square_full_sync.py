"""Benchmark: a full Square orders sync into PostgreSQL, against limits measured in the same run.

    python -m logikal_square_sync_tests.benchmarks.square_full_sync [--orders 100000] [--rss-orders 1000000]
        [--materialize] [--dlt] [--json FILE] [--profile PREFIX]

The sandbox is served from this process; every measured step runs in a child
process of its own, so its peak RSS is its own (read from getrusage).
Printed, each measured in this one run (these machines are noisy, so only
ratios within a run mean anything):

- full sync: orders/s, rows/s (orders + line items), peak RSS;
- the limit: fetching every page without writing, plus PostgreSQL binary COPY of
  the same rows into same-shaped tables (`copy_limit`), the line items' foreign key
  included (the figure without it is printed beside); target ratio sync / limit <= 1.15;
- an incremental re-sync after 1 % of the orders changed; target <= 5 % of the full sync;
- with --dlt, the same orders loaded by dlt's `rest_api` source, merge on id, into the same
  database (`dlt_orders.py`, in a virtualenv of its own, `.venv-dlt`, made on first use),
  and its ratio to the limit;
- with --materialize, the whole `dagster asset materialize --select square/orders`
  command (asset and completeness check, one process) on an empty warehouse and an
  instance whose storage exists (as in production; creating it is timed apart),
  split into the run and Dagster's start-up; the asset step against the limit, target
  <= 1.15; the command against the full sync, target <= the full sync + 3 s; and the
  command minus its step against a trivial one-asset project's command (`startup.py`),
  target <= + 0.5 s;
- with --rss-orders, the peak RSS of a full sync of that many orders; target <= 300 MB at 1M;
- with --profile, where the full sync's time went, by phase and thread (`thread_profile.py`):
  measured under cProfile, so that run's ratio means nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from logikal_square_sync_tests.benchmarks.peak_rss import peak_rss_mb

POSTGRES_ADMIN_URL = os.environ.get(
    "LSS_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
# Set (by --profile) to a path prefix: the sync step runs under cProfile, every thread.
PROFILE_ENV = "LSS_BENCH_PROFILE"
# A year of history: the 72 h lookback then re-reads under 1 % of the orders.
HISTORY_DAYS = 365
LOCATIONS = 10
# Times the trivial project's command is run beside ours (`benchmarks/startup.py` alternates both).
TRIVIAL_REPEAT = 3


# --- child steps (run as `python -m ... --step NAME`) --------------------------------------


def _client(url: str, token: str):
    from logikal_square_sync.square.engine.client import SquareClient

    return SquareClient(url, token, timeout=120)


def step_fetch(url: str, token: str, _warehouse: str) -> dict[str, Any]:
    """Every page the sync reads, read and decoded, nothing written: the network + JSON limit."""
    from datetime import UTC, datetime, time

    from logikal_square_sync.policies import policies
    from logikal_square_sync.square.engine.order_sync import location_groups, order_pages

    policy = policies().square.orders
    started = time_now()
    orders = 0
    with _client(url, token) as client:
        ids = sorted(location.id for location in client.list_locations()[0])
        start = datetime.combine(policy.history_start, time.min, UTC)
        end = datetime.now(UTC)
        for group in location_groups(ids, {}, policy.location_group_size):
            # The same requests the sync sends: each page a query from where the last one ended.
            for page in order_pages(client, group, end, policy.page_size, lambda: start):
                orders += len(page.get("orders") or [])
    return {"seconds": time_now() - started, "orders": orders}


def step_sync(url: str, token: str, warehouse: str) -> dict[str, Any]:
    from logikal_square_sync.policies import policies
    from logikal_square_sync.square.engine.location_sync import sync_locations
    from logikal_square_sync.square.engine.order_sync import sync_orders
    from logikal_square_sync.warehouse.connections import warehouse_engine

    engine = warehouse_engine(warehouse)
    with _client(url, token) as client:
        sync_locations(client, engine)
    profile_prefix = os.environ.get(PROFILE_ENV)
    with profiled(profile_prefix) as profiles:
        started = time_now()
        with _client(url, token) as client:
            report = sync_orders(client, engine, policies().square.orders)
        seconds = time_now() - started
    result: dict[str, Any] = {
        "seconds": seconds,
        "inserted": report.inserted,
        "updated": report.updated,
        "line_items": report.child_rows_written,
        "pages": report.pages,
        "api_calls": report.api_calls,
    }
    if profiles is not None and profile_prefix:
        from logikal_square_sync_tests.benchmarks.thread_profile import dump, phases

        result["profile"] = {"files": dump(profiles, profile_prefix), "phases": phases(profiles)}
    return result


@contextmanager
def profiled(prefix: str | None):
    """Every thread of the block under cProfile when `prefix` is set (`thread_profile.py`)."""
    if not prefix:
        yield None
        return
    from logikal_square_sync_tests.benchmarks.thread_profile import profiled_threads

    with profiled_threads() as profiles:
        yield profiles


def _driver_engine(warehouse: str) -> sa.Engine:
    from logikal_square_sync.warehouse.connections import warehouse_driver_url

    return sa.create_engine(warehouse_driver_url(warehouse))


def _cursor(conn: sa.Connection) -> Any:
    """A psycopg 3 cursor on the connection's own driver connection (for COPY)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.cursor()


def copy_limit(warehouse: str, tables: tuple[str, ...], *, foreign_keys: bool = True) -> dict[str, Any]:
    """COPY the rows the sync wrote into empty tables of the same shape: the database's limit.

    The best COPY there is: binary, through psycopg 3 as the sync's, from data read out
    beforehand in the same format (nothing encoded while timed), one COPY per table in one
    transaction. Same shape: columns, defaults, indexes, constraints and, with `foreign_keys`,
    the foreign keys among `tables` (a line item's order must exist, as in the warehouse: the
    check costs the server a lookup per row, which every writer of these tables pays).
    """
    from logikal_square_sync.warehouse.tables import metadata

    engine = _driver_engine(warehouse)
    data: dict[str, bytes] = {}
    with engine.connect() as conn, _cursor(conn) as cursor:
        for table in tables:
            with cursor.copy(f'COPY "{table}" TO STDOUT (FORMAT BINARY)') as copy:
                data[table] = b"".join(bytes(block) for block in copy)
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f'CREATE TABLE "copy_{table}" (LIKE "{table}" INCLUDING ALL)')
        for table in tables if foreign_keys else ():
            for key in metadata.tables[table].foreign_key_constraints:
                if key.referred_table.name in tables:
                    columns = ", ".join(f'"{c.name}"' for c in key.columns)
                    referred = ", ".join(f'"{e.column.name}"' for e in key.elements)
                    conn.exec_driver_sql(
                        f'ALTER TABLE "copy_{table}" ADD FOREIGN KEY ({columns}) '
                        f'REFERENCES "copy_{key.referred_table.name}" ({referred}) '
                        f"ON DELETE {key.ondelete or 'NO ACTION'}"
                    )
    started = time_now()
    rows = 0
    with engine.begin() as conn, _cursor(conn) as cursor:
        for table in tables:
            with cursor.copy(f'COPY "copy_{table}" FROM STDIN (FORMAT BINARY)') as copy:
                copy.write(data[table])
            rows += cursor.rowcount
    seconds = time_now() - started
    with engine.begin() as conn:
        for table in reversed(tables):
            conn.exec_driver_sql(f'DROP TABLE "copy_{table}"')
    engine.dispose()
    return {"seconds": seconds, "rows": rows}


def step_copy(_url: str, _token: str, warehouse: str) -> dict[str, Any]:
    # Parents first, so the line items' foreign key finds its orders.
    tables = ("square_orders", "square_order_line_items")
    without_keys = copy_limit(warehouse, tables, foreign_keys=False)
    return {**copy_limit(warehouse, tables), "seconds_without_foreign_keys": without_keys["seconds"]}


def step_materialize(url: str, token: str, warehouse: str) -> dict[str, Any]:
    """`dagster asset materialize --select square/orders` (the asset and its check), timed whole.

    Also read from the run's event log: the asset step and the check, so
    Dagster's own start-up (imports, code location load, run storage) is the
    rest of the command's time. Then the trivial project's command, on an instance of the
    same kind (`startup.py`).
    """
    from logikal_square_sync.square.engine.location_sync import sync_locations
    from logikal_square_sync.warehouse.connections import warehouse_engine
    from logikal_square_sync_tests.benchmarks.startup import (
        dagster_home,
        materialize,
        project_env,
        trivial_commands,
    )

    with _client(url, token) as client:
        sync_locations(client, warehouse_engine(warehouse))
    # A production instance's storage exists before any run: made first, timed apart.
    with dagster_home(project_env(url, token, warehouse)) as (env, new_instance_seconds):
        command = materialize(env, "logikal_square_sync.definitions", "square/orders")
        started = time_now()
        subprocess.run([sys.executable, "-c", "import logikal_square_sync.definitions"], env=env, check=True)
        import_seconds = time_now() - started
    return {
        **command,
        "import_seconds": import_seconds,
        "new_instance_seconds": new_instance_seconds,
        "trivial": trivial_commands(TRIVIAL_REPEAT),
    }


STEPS = {"fetch": step_fetch, "sync": step_sync, "copy": step_copy, "materialize": step_materialize}


def time_now() -> float:
    return time.perf_counter()


def run_child_step() -> None:
    step, url, token, warehouse = sys.argv[2:6]
    report_child_result(STEPS[step](url, token, warehouse))


def report_child_result(result: dict[str, Any]) -> None:
    """Prints a child step's figures, with its peak RSS and CPU, for the driver to read."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = peak_rss_mb()
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print("RESULT " + json.dumps(result), flush=True)


# --- the driver --------------------------------------------------------------------------


def child(step: str, url: str, token: str, warehouse: str) -> dict[str, Any]:
    return child_of(__spec__.name, step, url, token, warehouse)


def child_of(
    module: str, step: str, url: str, token: str, warehouse: str, *args: str, python: str = sys.executable
) -> dict[str, Any]:
    """Runs `python -m module --step step url token warehouse *args` and returns the figures it printed."""
    output = subprocess.run(
        [python, "-m", module, "--step", step, url, token, warehouse, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode != 0 or not lines:
        raise SystemExit(f"step {step} failed:\n{output.stdout}\n{output.stderr}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def dlt_child(python: str, url: str, token: str, warehouse: str) -> dict[str, Any]:
    """dlt's load of every order (`dlt_orders.py`, run by `python`), and how many orders it stored.

    The same queries as the sync's: the sandbox's locations (ListLocations, read here) in the
    policy's groups, from `history_start` to now. The orders are counted in the database, not
    taken from dlt's report, so a pipeline that loses pages cannot pass for a fast one.
    """
    from datetime import UTC, datetime

    from logikal_square_sync.policies import policies
    from logikal_square_sync.square.engine.client import DEFAULT_SQUARE_VERSION
    from logikal_square_sync.square.engine.order_sync import location_groups, search_body
    from logikal_square_sync_tests.benchmarks import dlt_orders

    policy = policies().square.orders
    with _client(url, token) as client:
        ids = sorted(location.id for location in client.list_locations()[0])
    start = datetime.combine(policy.history_start, datetime.min.time(), UTC)
    end = datetime.now(UTC)
    spec = {
        "bodies": [
            search_body(group, start, end, policy.page_size)
            for group in location_groups(ids, {}, policy.location_group_size)
        ],
        "square_version": DEFAULT_SQUARE_VERSION,
    }
    # dlt takes a plain PostgreSQL URL, without SQLAlchemy's driver name, and insists on a
    # password, which a server that trusts the connection (the test PostgreSQL) never asks for.
    address = sa.make_url(warehouse)
    plain = address.set(drivername="postgresql", password=address.password or "unused")
    result = child_of(
        dlt_orders.__name__,
        "dlt",
        url,
        token,
        plain.render_as_string(hide_password=False),
        json.dumps(spec),
        python=python,
    )
    engine = _driver_engine(warehouse)
    with engine.connect() as conn:
        result["orders"] = conn.exec_driver_sql(
            f'SELECT count(*) FROM "{dlt_orders.DATASET}"."{dlt_orders.ORDERS_TABLE}"'
        ).scalar_one()
    engine.dispose()
    return result


@contextmanager
def scratch_database():
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"lss_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def sandbox(orders: int):
    with sandbox_of(
        locations=LOCATIONS, orders=orders, line_items_per_order=3, history_days=HISTORY_DAYS
    ) as served:
        yield served


@contextmanager
def sandbox_of(**config: Any):
    """A Square sandbox with this `SquareSandboxConfig`, served from a thread of this process."""
    from logikal_square_sync_sandbox.server import serve_in_thread
    from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig, create_app

    started = time_now()
    state = SquareSandbox(SquareSandboxConfig(seed=1, **config))
    print(f"  sandbox generated in {time_now() - started:.1f}s", flush=True)
    with serve_in_thread(create_app(state)) as served:
        yield state, served.url


def benchmark(
    orders: int, *, materialize: bool = False, incremental: bool = True, dlt: bool = False
) -> dict[str, Any]:
    """Measures one size; prints the figures and returns them (the plots read them)."""
    print(f"Full sync of {orders:,} orders ({LOCATIONS} locations, ~3 line items each) into PostgreSQL")
    if dlt:
        from logikal_square_sync_tests.benchmarks.dlt_orders import dlt_python

        # Before the sandbox: installing dlt the first time is not part of any figure.
        python = dlt_python()
    with sandbox(orders) as (state, url):
        token = state.config.access_token
        with scratch_database() as warehouse:
            fetch = child("fetch", url, token, warehouse)
            full = child("sync", url, token, warehouse)
            copy = child("copy", url, token, warehouse)
            if dlt:
                loaded = dlt_child(python, url, token, warehouse)
            if incremental:
                changed = state.update_orders(count=orders // 100)
                again = child("sync", url, token, warehouse)
        if materialize:
            with scratch_database() as warehouse:
                command = child("materialize", url, token, warehouse)

    rows = full["inserted"] + full["line_items"]
    limit = fetch["seconds"] + copy["seconds"]
    ratio = full["seconds"] / limit
    keyless_limit = fetch["seconds"] + copy["seconds_without_foreign_keys"]
    print(f"  fetch every page, no writes : {fetch['seconds']:8.2f} s  ({fetch['orders']:,} orders)")
    print(
        f"  COPY of the same rows       : {copy['seconds']:8.2f} s  ({copy['rows']:,} rows, binary, "
        f"foreign key checked; without it {copy['seconds_without_foreign_keys']:.2f} s)"
    )
    print(f"  limit (fetch + COPY)        : {limit:8.2f} s  (without the foreign key {keyless_limit:.2f} s)")
    print(
        f"  full sync                   : {full['seconds']:8.2f} s  "
        f"{full['inserted'] / full['seconds']:,.0f} orders/s, {rows / full['seconds']:,.0f} rows/s, "
        f"{full['pages']} pages, peak RSS {full['peak_rss_mb']:.0f} MB"
    )
    print(f"  CPU of the sync process     : {full['cpu_seconds']:8.2f} s  (imports included)")
    print(
        f"  ratio full sync / limit     : {ratio:8.2f}   (target <= 1.15)  "
        f"{'OK' if ratio <= 1.15 else 'MISSED'}  (against the limit without the foreign key: "
        f"{full['seconds'] / keyless_limit:.2f})"
    )
    if "profile" in full:
        print_profile(full["seconds"], full["profile"])
    result: dict[str, Any] = {
        "orders": orders,
        "fetch": fetch,
        "copy": copy,
        "limit_seconds": limit,
        "sync": full,
        "ratio": ratio,
    }
    if dlt:
        tables = ", ".join(f"{table} {count:,}" for table, count in loaded["rows"].items())
        print(
            f"  dlt rest_api, merge on id   : {loaded['seconds']:8.2f} s  "
            f"({loaded['orders']:,} orders in the database; rows loaded: {tables}; "
            f"dlt {loaded['dlt_version']}, peak RSS {loaded['peak_rss_mb']:.0f} MB)"
        )
        print(
            f"  ratio dlt / limit           : {loaded['seconds'] / limit:8.2f}   "
            f"(dlt / full sync {loaded['seconds'] / full['seconds']:.2f})"
        )
        result["dlt"] = loaded
        result["dlt_ratio"] = loaded["seconds"] / limit
        if loaded["orders"] != orders:
            raise SystemExit("dlt did not load what the source holds: its figure is void")
    if incremental:
        share = again["seconds"] / full["seconds"]
        print(
            f"  incremental, 1 % changed    : {again['seconds']:8.2f} s  "
            f"({again['updated']:,} updated of {len(changed):,} changed, {again['pages']} pages)"
        )
        print(
            f"  incremental / full          : {share:8.1%}   (target <= 5 %)  "
            f"{'OK' if share <= 0.05 else 'MISSED'}"
        )
        result["incremental"] = again
        if again["updated"] != len(changed):
            raise SystemExit("the incremental sync did not write what changed: the benchmark is void")
    if full["inserted"] != orders:
        raise SystemExit("the sync did not write what the source holds: the benchmark is void")
    if materialize:
        step = command["steps"].get("square__orders", float("nan"))
        others = sum(t for key, t in command["steps"].items() if key != "square__orders")
        print(
            f"  dagster asset materialize   : {command['seconds']:8.2f} s  "
            f"(run {command['run_seconds']:.2f} s: asset step {step:.2f} s, "
            f"{command['checks']} check(s) {others:.2f} s)"
        )
        # The step is what a scheduled run spends on orders: the sync inside Dagster's step.
        step_ratio = step / limit
        print(
            f"  ratio asset step / limit    : {step_ratio:8.2f}   (target <= 1.15)  "
            f"{'OK' if step_ratio <= 1.15 else 'MISSED'}"
        )
        result["step_ratio"] = step_ratio
        print(
            f"  Dagster start-up            : {command['seconds'] - command['run_seconds']:8.2f} s  "
            f"(command minus run; importing the definitions alone {command['import_seconds']:.2f} s; "
            f"a new instance's storage, made before and not counted: {command['new_instance_seconds']:.2f} s)"
        )
        extra = command["seconds"] - full["seconds"]
        print(
            f"  command - full sync step    : {extra:8.2f} s   (target <= 3 s)  "
            f"{'OK' if extra <= 3 else 'MISSED'}"
        )
        from logikal_square_sync_tests.benchmarks.startup import compare

        compare([command], command["trivial"])
        result["materialize"] = command
    return result


def print_profile(seconds: float, profile: dict[str, Any]) -> None:
    """The sync's time by phase and thread (cProfile's cumulative times, so its overhead included)."""
    print(f"  where the sync's {seconds:.2f} s went (under cProfile, every thread; each thread's own time):")
    print("    | phase | thread | seconds | calls |")
    print("    |---|---|---|---|")
    for phase, thread, phase_seconds, calls in profile["phases"]:
        print(f"    | {phase} | {thread} | {phase_seconds:.2f} | {calls:,} |")
    print(f"  profiles: {', '.join(profile['files'])} (python -m pstats FILE)")


def memory(orders: int) -> dict[str, Any]:
    print(f"Peak RSS of a full sync of {orders:,} orders")
    with sandbox(orders) as (state, url), scratch_database() as warehouse:
        full = child("sync", url, state.config.access_token, warehouse)
    print(
        f"  full sync                   : {full['seconds']:8.2f} s  "
        f"{full['inserted'] / full['seconds']:,.0f} orders/s"
    )
    print(
        f"  peak RSS                    : {full['peak_rss_mb']:8.0f} MB (target <= 300 MB)  "
        f"{'OK' if full['peak_rss_mb'] <= 300 else 'MISSED'}"
    )
    return {"orders": orders, "sync": full}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        run_child_step()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rss-orders", type=int, default=0, help="also measure peak RSS at this many orders")
    parser.add_argument(
        "--materialize",
        action="store_true",
        help="also time `dagster asset materialize --select square/orders`",
    )
    parser.add_argument(
        "--no-incremental", action="store_true", help="skip the incremental re-sync after 1 %% changed"
    )
    parser.add_argument(
        "--dlt", action="store_true", help="also time dlt's rest_api source loading the same orders"
    )
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="run the full sync under cProfile (every thread), print where its time went and keep "
        "each thread's profile in PREFIX.<thread>.prof; the sync is slower so, its ratio void",
    )
    args = parser.parse_args()
    if args.profile:
        os.environ[PROFILE_ENV] = os.path.abspath(args.profile)
    results: dict[str, Any] = {
        "benchmark": benchmark(
            args.orders, materialize=args.materialize, incremental=not args.no_incremental, dlt=args.dlt
        )
    }
    if args.rss_orders:
        results["memory"] = memory(args.rss_orders)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
