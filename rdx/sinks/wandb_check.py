"""Whether the configured W&B logger can work, checked before any work (light: wandb is not imported)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)


class WandbUnavailableError(RuntimeError):
    """An online W&B run was asked for, but there is no API key or the server cannot be reached."""


def _online_problem() -> str | None:
    """Why an online W&B run would fail here (no API key, server unreachable), or None."""
    import netrc
    import socket
    from urllib.parse import urlparse

    base = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    host = base.hostname or "api.wandb.ai"
    port = base.port or (443 if base.scheme == "https" else 80)
    if not os.environ.get("WANDB_API_KEY"):
        try:
            stored = netrc.netrc().authenticators(host)
        except (OSError, netrc.NetrcParseError):
            stored = None
        if stored is None:
            return f"no API key (WANDB_API_KEY is not set and ~/.netrc has none for {host})"
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        return f"the W&B server {host}:{port} cannot be reached ({error})"
    return None


def check_logger(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The logger settings a run can use, checked before any work: an online run needs an API key and a
    reachable server; without them it fails at once, or (``fallback_offline: true``) logs offline with a
    warning (sync later with ``wandb sync``). Other modes pass unchanged.

    Raises:
        WandbUnavailableError: online logging is impossible and no fallback was asked for.
    """
    settings = dict(settings)
    if settings.get("mode") != "online":
        return settings
    problem = _online_problem()
    if problem is None:
        return settings
    if settings.get("fallback_offline"):
        logger.warning("W&B online logging is not possible (%s): logging offline instead", problem)
        return {**settings, "mode": "offline"}
    raise WandbUnavailableError(
        f"logger=wandb_online cannot log: {problem}. Export WANDB_API_KEY on a machine that reaches the "
        "server, or use logger=wandb_offline (upload later with `wandb sync`), or set "
        "logger.fallback_offline=true to log offline when online is not possible"
    )
