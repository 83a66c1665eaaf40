"""An asyncio API client (kubernetes_asyncio) from a kubeconfig or the in-cluster service account.

Every call is one raw JSON request through the client's connection pool, TLS and auth (token
refresh included): our objects are plain dicts, and the generated API methods would validate
every argument and walk every body to "sanitize" it, most of a stored alert's CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import weakref
from typing import Any, cast
from urllib.parse import urlencode

from kubernetes_asyncio import client, config

from falco_reporter.kube.errors import translate, transport_errors

Obj = dict[str, Any]

# (connect, read) seconds for every call: an API server outage must surface quickly as
# KubeUnavailable (the receiver then answers 503) instead of hanging a request.
DEFAULT_TIMEOUT = (3.0, 10.0)
JSON = "application/json"


class Kube:
    """Where the API server is and how to reach it, shared by every store.

    An aiohttp session belongs to the event loop that made it, so the client is built on first
    use in each loop (the operator has one; tests and the CLI's ``asyncio.run`` may have several).
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        *,
        pool_size: int = 32,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.pool_size = pool_size
        self.timeout = timeout
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, client.ApiClient] = (
            weakref.WeakKeyDictionary()
        )

    async def _configuration(self) -> client.Configuration:
        cfg = client.Configuration()
        path = self.kubeconfig or os.environ.get("KUBECONFIG")
        if path or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            await config.load_kube_config(config_file=path, client_configuration=cfg, persist_config=False)
        else:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        # Concurrent requests share this many connections (aiohttp queues the rest).
        cfg.connection_pool_maxsize = self.pool_size
        return cfg

    async def api(self) -> client.ApiClient:
        """This loop's client (configured on first use)."""
        loop = asyncio.get_running_loop()
        api = self._clients.get(loop)
        if api is None:
            cfg = await self._configuration()
            api = self._clients.get(loop)  # another task may have finished first
            if api is None:
                api = self._clients[loop] = client.ApiClient(cfg)
                # kubernetes_asyncio sets aiohttp's trust_env, which reads ~/.netrc and the proxy
                # variables in two default-pool thread hops on every request (a fifth of the
                # operator's CPU). The synchronous client never read them; a kubeconfig's
                # proxy-url still applies (it is passed per request).
                api.rest_client.pool_manager._trust_env = False
        return api

    async def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: list[tuple[str, str]] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
        answer: bool = True,
    ) -> Obj:
        """One API request; the answer as a dict ({} when ``answer`` is false: not decoded), or a
        translated KubeError."""
        try:
            api = await self.api()
            headers = {**api.default_headers, "Accept": accept, "Content-Type": content_type}
            await api.update_params_for_auth(headers, [], ["BearerToken"])
            url = f"{api.configuration.host}{path}" + (f"?{urlencode(query)}" if query else "")
            response = await api.rest_client.request(
                method,
                url,
                headers=headers,
                body=body,
                # (connect, read) is a documented form; the stub names only the others.
                _request_timeout=self.timeout,  # type: ignore[arg-type]
            )
        except transport_errors() as exc:
            raise translate(exc) from exc
        return cast(Obj, json.loads(response.data or b"{}")) if answer else {}

    async def close(self) -> None:
        """Close this loop's client (its connections)."""
        api = self._clients.pop(asyncio.get_running_loop(), None)
        if api is not None:
            await api.close()


def connect(kubeconfig: str | None = None, *, pool_size: int = 32) -> Kube:
    """Configure from ``kubeconfig``, $KUBECONFIG, ~/.kube/config, or in-cluster, in that order
    (read when the first request is made)."""
    return Kube(kubeconfig, pool_size=pool_size)
