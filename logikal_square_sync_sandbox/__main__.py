"""Serve the sandbox Square and LogiKal APIs until interrupted.

    python -m logikal_square_sync_sandbox --square-port 8701 --logikal-port 8702

Where LogiKal's real behaviour is unknown, options make the LogiKal sandbox
answer the other way, for acceptance runs in each mode:
`--refuse-sibling-elevation-select 405|409`, `--first-select-answer-lost`,
`--first-select-not-found`, `--select-applied-error 502|504` (with
`--select-applied-error-share`), `--directory-cycle self|ancestor`.

Prints one `READY <json>` line with both base URLs and the credentials once
both servers accept connections; the demo and the benchmarks wait for it.
`GET http://host:port/_sandbox/stats` on the LogiKal port answers the LogiKal
sandbox's counters (logins, logouts, sessions open now and their peak
`max_concurrent_sessions`), to check the session budget from outside.

Where Square's behaviour is undocumented the Square sandbox answers either
way: `--tombstones full` serves deleted catalog objects with their last data
(default: minimal, as Square's example), `--result-sets live` re-evaluates a
search on every page (default: pinned at the first page), `--catalog-order
updated_at` sorts catalog results oldest first (default: shuffled), and
`--edit-every-pages N` edits a random variation price, inventory count or
order after every N-th page of each search, i.e. while a client pages.
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import threading
from typing import Any, get_args

from logikal_square_sync_sandbox.logikal import LogikalSandbox, LogikalSandboxConfig
from logikal_square_sync_sandbox.logikal import create_app as create_logikal_app
from logikal_square_sync_sandbox.server import start_in_thread
from logikal_square_sync_sandbox.square import SquareSandbox, SquareSandboxConfig
from logikal_square_sync_sandbox.square import create_app as create_square_app
from logikal_square_sync_sandbox.square.state import CatalogOrder, ResultSets, Tombstones

PAGED_ENDPOINTS = ("catalog_search", "inventory_counts", "orders_search")

LOGIKAL_BASE_PATH = "/MbioeService.svc/api/v3"

# Square's undocumented behaviours, each answered either way: (flag, its modes, default, help).
_SQUARE_MODES: tuple[tuple[str, Any, str, str], ...] = (
    (
        "--tombstones",
        Tombstones,
        "minimal",
        "what a deleted Square catalog object carries: minimal (as Square's example) or its last data",
    ),
    (
        "--result-sets",
        ResultSets,
        "pinned",
        "Square searches fixed at their first page (pinned) or re-evaluated on every page (live)",
    ),
    (
        "--catalog-order",
        CatalogOrder,
        "shuffled",
        "SearchCatalogObjects result order: shuffled, or by updated_at (an edit moves an object last)",
    ),
)
_SQUARE_OPTIONS = (
    "seed",
    "locations",
    "orders",
    "line_items_per_order",
    "items",
    "history_days",
    "tombstones",
    "result_sets",
    "catalog_order",
)
_LOGIKAL_OPTIONS = (
    "seed",
    "projects_per_directory",
    "elevations_per_phase",
    "time_scale",
    "parts_list_target_bytes",
    "first_select_answer_lost",
    "first_select_not_found",
    "select_applied_error_status",
    "select_applied_error_share",
    "directory_cycle",
)


def _pages(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (never) or a number of pages, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m logikal_square_sync_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--square-port", type=int, default=8701, help="0: any free port; -1: none")
    parser.add_argument("--logikal-port", type=int, default=8702, help="0: any free port; -1: none")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orders", type=int, default=2_000, help="Square orders to generate")
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--line-items-per-order", type=int, default=3)
    parser.add_argument("--items", type=int, default=40, help="Square catalog items")
    parser.add_argument("--history-days", type=int, default=30)
    for flag, modes, default, text in _SQUARE_MODES:
        parser.add_argument(flag, choices=get_args(modes), default=default, help=text)
    parser.add_argument(
        "--edit-every-pages",
        type=_pages,
        default=0,
        metavar="N",
        help="edit one random Square object after every N-th page of each search (0: never)",
    )
    parser.add_argument("--projects-per-directory", type=int, default=2)
    parser.add_argument("--elevations-per-phase", type=int, default=3)
    parser.add_argument(
        "--logikal-time-scale",
        dest="time_scale",
        type=float,
        default=0.05,
        metavar="SCALE",
        help="multiplier of LogiKal's real latencies (1.0 = a 4.5-9 s login)",
    )
    parser.add_argument(
        "--parts-list-bytes", dest="parts_list_target_bytes", type=int, default=300_000, metavar="BYTES"
    )
    _status_option(
        parser,
        "--refuse-sibling-elevation-select",
        [405, 409],
        "LogiKal refuses POST /elevations/select from a sibling's elevation state with STATUS "
        "(405 or 409); by default it allows it",
    )
    parser.add_argument(
        "--first-select-answer-lost",
        action="store_true",
        help="LogiKal applies the first select of each target, then closes the connection unanswered",
    )
    parser.add_argument(
        "--first-select-not-found",
        action="store_true",
        help="LogiKal answers 404 once to the first select of each target that exists",
    )
    _status_option(
        parser,
        "--select-applied-error",
        [502, 504],
        "LogiKal applies the first select of each target, then its gateway answers STATUS (502 or 504)",
        dest="select_applied_error_status",
    )
    parser.add_argument(
        "--select-applied-error-share",
        type=float,
        default=1.0,
        metavar="SHARE",
        help="the share of select targets --select-applied-error hits (0 < SHARE <= 1; default: all)",
    )
    parser.add_argument(
        "--directory-cycle",
        choices=["self", "ancestor"],
        default=None,
        help="a LogiKal directory listing names the listed directory itself, or its root (a cycle)",
    )
    return parser.parse_args(argv)


def _status_option(
    parser: argparse.ArgumentParser, flag: str, statuses: list[int], text: str, **extra: Any
) -> None:
    parser.add_argument(flag, type=int, choices=statuses, default=None, metavar="STATUS", help=text, **extra)


def _picked(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The named options, keyed by the config field each sets (an option's dest is that field's name)."""
    return {name: getattr(args, name) for name in names}


def logikal_config(args: argparse.Namespace) -> LogikalSandboxConfig:
    refusal = args.refuse_sibling_elevation_select
    return LogikalSandboxConfig(
        allow_sibling_elevation_select=refusal is None,
        sibling_refusal_status=refusal or 409,
        **_picked(args, _LOGIKAL_OPTIONS),
    )


def square_sandbox(args: argparse.Namespace) -> SquareSandbox:
    """The Square sandbox the options describe, mid-run edits armed."""
    square = SquareSandbox(SquareSandboxConfig(**_picked(args, _SQUARE_OPTIONS)))
    if args.edit_every_pages > 0:
        for endpoint in PAGED_ENDPOINTS:
            square.after_page(
                endpoint, args.edit_every_pages, functools.partial(square.random_edit, endpoint), repeat=True
            )
    return square


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ready: dict[str, str] = {}
    servers = []
    if args.square_port >= 0:
        square = square_sandbox(args)
        served = start_in_thread(create_square_app(square), args.host, args.square_port or None)
        servers.append(served)
        ready.update(square_base_url=served.url, square_access_token=square.config.access_token)
    if args.logikal_port >= 0:
        logikal = LogikalSandbox(logikal_config(args))
        served = start_in_thread(create_logikal_app(logikal), args.host, args.logikal_port or None)
        servers.append(served)
        ready.update(
            logikal_base_url=served.url + LOGIKAL_BASE_PATH,
            logikal_username=logikal.config.username,
            logikal_password=logikal.config.password,
        )
    print("READY " + json.dumps(ready), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for served in servers:
        served.stop()


if __name__ == "__main__":
    main()
