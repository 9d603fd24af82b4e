"""A local Square Connect v2 server (Starlette) with seeded data and fault injection.

sandbox = SquareSandbox(SquareSandboxConfig(orders=100_000))
with serve_in_thread(create_app(sandbox)) as served:
    ...  # point a client at served.url with sandbox.config.access_token
"""

from .app import create_app
from .faults import ENDPOINTS, FAULT_KINDS, Fault, FaultPlan, SandboxStats
from .hooks import PageHook
from .state import DEFAULT_SQUARE_VERSION, SquareSandbox, SquareSandboxConfig

__all__ = [
    "DEFAULT_SQUARE_VERSION",
    "ENDPOINTS",
    "FAULT_KINDS",
    "Fault",
    "FaultPlan",
    "PageHook",
    "SandboxStats",
    "SquareSandbox",
    "SquareSandboxConfig",
    "create_app",
]
