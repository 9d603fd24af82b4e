"""`python -m logikal_square_sync.interfaces.api`: the API under uvicorn (the `api` role of commands.sh)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from logikal_square_sync.common.command_line import setting_or_exit
from logikal_square_sync.interfaces.api.app import create_app
from logikal_square_sync.interfaces.api.session_bank import session_bank
from logikal_square_sync.interfaces.api.settings import ApiConfigError, settings_from_env


def main() -> int:
    settings = setting_or_exit(settings_from_env, ApiConfigError, "api")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn's access log shows method, path and query, never headers (the token is a header).
    with session_bank():
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
