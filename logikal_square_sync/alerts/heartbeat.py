"""The heartbeat: each tick of an alert sensor pings LSS_HEARTBEAT_URL, a dead-man's switch.

Alerts are sent by the daemon's sensor ticks, so a dead daemon (or code server)
can tell nobody. A monitor outside the deployment (healthchecks.io, Uptime
Kuma's push monitor, Cronitor, ...) expects these pings and alerts on its own
when they stop. A ping is sent only when a tick has finished its work: a sensor
whose ticks keep failing goes quiet, too. The ping is best effort: a monitor
that is down or slow never fails the tick, it is only logged.
"""

from __future__ import annotations

import logging

from logikal_square_sync.alerts.notifiers import describe_error
from logikal_square_sync.alerts.redaction import redact, register_secret

HEARTBEAT_ENV = "LSS_HEARTBEAT_URL"


def ping(url: str | None, sensor_name: str, timeout_seconds: float, log: logging.Logger) -> bool:
    """A plain GET of `url` (what every push monitor accepts); False, logged, when it fails."""
    if not url:
        return False
    # The URL is what lets anyone report "alive" for this deployment: keep it out of logs.
    register_secret(url)
    import httpx  # imported on use, as in notifiers.py: loading the code location need not pay it

    from logikal_square_sync.common.http import tls_context

    try:
        response = httpx.get(
            url,
            timeout=timeout_seconds,
            headers={"User-Agent": f"logikal_square_sync {sensor_name}"},
            # The public CAs, not whatever SSL_CERT_FILE names (see http.tls_context).
            verify=tls_context(),
        )
        if response.is_success:
            return True
        reason = f"HTTP {response.status_code}"
    except Exception as error:  # a heartbeat must never fail the tick, whatever goes wrong
        reason = describe_error(error)
    log.warning(f"Heartbeat to {HEARTBEAT_ENV} failed: {redact(reason)}")
    return False
