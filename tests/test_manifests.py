"""The Kubernetes and AI Core examples mount the secret as a directory: the only way a
rotation reaches a container (subPath mounts and environment variables never change)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).parent.parent / "examples"


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, or of an AI Core serving template's KServe predictor."""
    if document["kind"] == "Pod":
        return dict(document["spec"])
    assert document["kind"] == "ServingTemplate"
    inner = yaml.safe_load(document["spec"]["template"]["spec"])  # a string in AI Core
    return dict(inner["predictor"])


def check_directory_mounts(spec: dict[str, Any]) -> list[str]:
    """The secret's mount paths; fails on a subPath mount or a watched secret in the
    environment (a secret that must rotate is mounted, never read into a variable)."""
    secret_volumes = {volume["name"] for volume in spec["volumes"] if "secret" in volume}
    assert secret_volumes
    paths = []
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            if mount["name"] in secret_volumes:
                assert "subPath" not in mount, container["name"]
                assert "subPathExpr" not in mount, container["name"]
                assert mount.get("readOnly") is True
                paths.append(mount["mountPath"])
        for variable in container.get("env", []):  # read once, at start: no rotation
            assert "secretKeyRef" not in variable.get("valueFrom", {}), variable["name"]
        for source in container.get("envFrom", []):
            assert "secretRef" not in source, container["name"]
    return paths


@pytest.mark.parametrize(
    "example",
    ["kubernetes/sidecar.yaml", "kubernetes/sidecar-webhook.yaml", "aicore/serving-template.yaml"],
)
def test_the_secret_is_mounted_as_a_directory_and_watched(example: str) -> None:
    document = yaml.safe_load((EXAMPLES / example).read_text())
    spec = pod_spec(document)
    paths = check_directory_mounts(spec)
    watching = [
        container
        for container in spec["containers"]
        if "secretwatch" in container["image"] or container.get("command") == ["secretwatch"]
    ]
    assert watching, "no container runs secretwatch"
    for container in watching:
        arguments = container["args"]
        assert arguments[0] in {"watch", "run"}
        assert arguments[1] in paths  # it watches the directory that is mounted


def test_the_sidecar_can_signal_the_server() -> None:
    spec = pod_spec(yaml.safe_load((EXAMPLES / "kubernetes/sidecar.yaml").read_text()))
    assert spec["shareProcessNamespace"] is True
    sidecar = next(c for c in spec["containers"] if c["name"] == "secretwatch")
    env = {variable["name"]: variable["value"] for variable in sidecar["env"]}
    assert env["SECRETWATCH_SIGNAL"] == "HUP"
    assert env["SECRETWATCH_PROCESS_NAME"]


def test_a_webhook_url_with_credentials_comes_from_a_mounted_secret() -> None:
    """The webhook's URL, which holds a password, is neither in args (``ps`` shows those to
    the pod's other processes) nor in env (the pod's spec shows both): --webhook-file reads
    it from a secret of its own, mounted read-only, and follows it."""
    spec = pod_spec(yaml.safe_load((EXAMPLES / "kubernetes/sidecar-webhook.yaml").read_text()))
    sidecar = next(c for c in spec["containers"] if c["name"] == "secretwatch")
    arguments = sidecar["args"]
    assert "--webhook" not in arguments
    assert not any(v["name"] == "SECRETWATCH_WEBHOOK" for v in sidecar.get("env", []))
    path = arguments[arguments.index("--webhook-file") + 1]
    [mount] = [m for m in sidecar["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "my-server-reload-webhook"
    assert mount["readOnly"] is True
