"""The product's kube layer acting as another identity (impersonation by the admin kubeconfig)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from falco_reporter.kube.client import Kube


class KubeAs(Kube):
    """A Kube whose every request carries ``Impersonate-User: user`` (a client default header)."""

    def __init__(self, kubeconfig: Path | str, user: str) -> None:
        super().__init__(str(kubeconfig))
        self.user = user

    async def api(self) -> Any:
        api = await super().api()
        api.set_default_header("Impersonate-User", self.user)
        return api
