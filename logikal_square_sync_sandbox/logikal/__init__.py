"""A local fake of Orgadata LogiKal's MBIOE REST API v3.

`create_app(LogikalSandbox(config))` is an ASGI app serving the API at
`<server>/MbioeService.svc/api/v3`, with the session-cursor rules, latency
model, seeded data, mutation hooks and fault injection that the facts in
`docs/logikal-api.md` call for. Serve it with
`logikal_square_sync_sandbox.server.serve_in_thread`.
"""

from .app import BASE_PATH, create_app
from .latency import DEFAULT_LATENCIES, CallLatency, LatencyModel
from .parts_lists import TABLES as PARTS_LIST_TABLES
from .service import ENDPOINTS, LogikalSandbox, LogikalSandboxConfig, LogikalSandboxStats
from .tree import ZERO_GUID

__all__ = [
    "BASE_PATH",
    "DEFAULT_LATENCIES",
    "ENDPOINTS",
    "PARTS_LIST_TABLES",
    "ZERO_GUID",
    "CallLatency",
    "LatencyModel",
    "LogikalSandbox",
    "LogikalSandboxConfig",
    "LogikalSandboxStats",
    "create_app",
]
