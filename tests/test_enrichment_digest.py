"""The image digest comes from the container status' imageID in each form a runtime reports it."""

from __future__ import annotations

import pytest

from falco_reporter.enrichment.service import enrich
from falco_reporter.enrichment.source import StaticObjects
from falco_reporter.models.falco import normalise

CONTAINER = "containerd://" + "ab" * 32
DIGEST = "sha256:" + "3f" * 32


def _pod(image_id: str) -> dict[str, object]:
    return {
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "web:1"}]},
        "status": {
            "containerStatuses": [
                {"name": "app", "image": "web:1", "imageID": image_id, "containerID": CONTAINER}
            ]
        },
    }


@pytest.mark.parametrize(
    ("image_id", "digest"),
    [
        (f"docker.io/library/web@{DIGEST}", DIGEST),  # pulled from a registry (containerd)
        (f"docker-pullable://web@{DIGEST}", DIGEST),  # dockershim's form
        (DIGEST, DIGEST),  # loaded without a registry: the config digest (ctr import, kind load)
        ("web:1", ""),
        ("", ""),
    ],
)
async def test_image_digest_from_image_id(image_id, digest):
    """A registry digest or a bare config digest becomes imageDigest; anything else leaves it empty."""
    alert = normalise(
        {
            "rule": "Terminal shell in container",
            "priority": "Notice",
            "output": "shell",
            "time": "2026-12-07T12:00:00Z",
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web", "container.id": "ababababab"},
        }
    )
    container = (await enrich(alert, StaticObjects([_pod(image_id)]))).container
    assert (container.image_id, container.image_digest) == (image_id, digest)
