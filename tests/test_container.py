"""The container image recipe, checked without a container engine (none runs here): its
stages, user and entrypoint, what it installs, and the manifests that run it."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from .test_manifests import pod_spec

ROOT = Path(__file__).parent.parent
CONTAINER = ROOT / "examples" / "container"
DOCKERFILE = CONTAINER / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
IMAGE = f"registry.example.com/secretwatch:{VERSION}"  # the placeholder, everywhere
MANIFESTS = ["kubernetes/sidecar.yaml", "kubernetes/sidecar-webhook.yaml"]
AICORE = "aicore/serving-template.yaml"


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions (comments left out), one list per stage."""
    found: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(str(DOCKERFILE)).structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found and instruction["instruction"] != "COMMENT":
            found[-1].append(instruction)
    return found


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def test_the_dockerfile_builds_the_wheel_then_installs_it_into_a_slim_image() -> None:
    """Two stages: the first builds the wheels from the source, the last installs only
    those, with the sidecar extra, into a slim Python image."""
    build, *_, final = stages()
    assert values(build, "FROM")[0].endswith(" AS build")
    assert any("pip wheel" in run for run in values(build, "RUN"))
    parser = DockerfileParser(str(DOCKERFILE))
    base = parser.baseimage  # the last stage's, with the ARG's default put in
    assert base.startswith("python:3."), base
    assert base.endswith("-slim"), base
    [install] = [run for run in values(final, "RUN") if "pip install" in run]
    assert "from=build" in install  # the wheels of the first stage
    assert "--no-index" in install  # and nothing from an index
    assert '"secretwatch[sidecar]"' in install


def test_the_image_runs_secretwatch_as_a_user_of_its_own() -> None:
    """The image's last USER is a numeric one other than root (the kubelet can check
    runAsNonRoot only then), and its entrypoint is the console script."""
    final = stages()[-1]
    user = values(final, "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) != 0
    if gid:
        assert gid.isdigit(), user
        assert int(gid) != 0
    kinds = [i["instruction"] for i in final]
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert json.loads(values(final, "ENTRYPOINT")[-1]) == ["secretwatch"]


def test_what_the_image_installs_exists() -> None:
    """Every extra the Dockerfile names is one of pyproject.toml's; the console script it
    runs is declared and loads; it copies what building the wheel needs, the license too
    (Apache-2.0 wants a copy in what is distributed), and the build context (its
    .dockerignore) lets those files through."""
    text = DOCKERFILE.read_text()
    extras = {e for names in re.findall(r"\[([\w,-]+)\]", text) for e in names.split(",")}
    assert extras == {"sidecar"}
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"])
    assert PYPROJECT["project"]["scripts"]["secretwatch"] == "secretwatch._cli.main:main"
    [script] = importlib.metadata.entry_points(group="console_scripts", name="secretwatch")
    assert callable(script.load())
    copied = {
        source
        for copy in values(stages()[0], "COPY")
        for source in copy.split()[:-1]
        if not source.startswith("--")
    }
    needed = {
        "pyproject.toml",
        PYPROJECT["project"]["readme"],
        *PYPROJECT["project"]["license-files"],
    }
    needed |= set(PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    assert copied == needed
    for source in copied:
        assert (ROOT / source).exists(), source
    lines = (CONTAINER / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert allowed[0] == "*"  # everything else stays out of the context
    assert {line.strip("!/") for line in allowed if line.startswith("!")} == copied


def test_no_secret_is_baked_in() -> None:
    """No build argument or environment variable of the image could carry a credential or
    a secretwatch setting: those come from the pod at run time."""
    for stage in stages():
        for name in ("ARG", "ENV"):
            for value in values(stage, name):
                assert not re.search(r"SECRET|PASSW|TOKEN|WEBHOOK|KEY|AUTH", value, re.I), value


@functools.cache
def help_text(*subcommand: str) -> str:
    """What ``secretwatch [SUBCOMMAND] --help`` prints."""
    done = subprocess.run(
        [sys.executable, "-m", "secretwatch", *subcommand, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def has_option(subcommand: str, option: str) -> bool:
    """Whether ``secretwatch SUBCOMMAND --help`` lists ``option`` (``--webhook`` is not
    ``--webhook-timeout``)."""
    pattern = rf"(?<![\w-]){re.escape(option)}(?![\w-])"
    return re.search(pattern, help_text(subcommand)) is not None


def secretwatch_containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(document)
    return [
        container
        for container in spec["containers"]
        if container["image"] == IMAGE or container.get("command") == ["secretwatch"]
    ]


def check_command(container: dict[str, Any]) -> None:
    """The container's subcommand, options and ``SECRETWATCH_*`` variables are real ones."""
    subcommand, *arguments = container["args"]
    assert re.search(rf"^\s+{subcommand}\s", help_text(), re.M), subcommand
    if "--" in arguments:  # what follows is run's command
        arguments = arguments[: arguments.index("--")]
    for argument in arguments:
        if argument.startswith("--"):
            option = argument.partition("=")[0]
            assert has_option(subcommand, option), f"{subcommand} {option}"
    for variable in container.get("env", []):
        name = variable["name"]
        assert name.startswith("SECRETWATCH_"), name
        option = "--" + name.removeprefix("SECRETWATCH_").lower().replace("_", "-")
        assert has_option(subcommand, option), f"{name}: {subcommand} has no {option}"


@pytest.mark.parametrize("example", MANIFESTS)
def test_the_kubernetes_sidecars_run_the_image(example: str) -> None:
    """A sidecar runs the image built by the Dockerfile with its entrypoint (no command
    of its own), and its args and SECRETWATCH_* variables are real subcommands and options."""
    document = yaml.safe_load((ROOT / "examples" / example).read_text())
    [sidecar] = secretwatch_containers(document)
    assert sidecar["image"] == IMAGE
    assert "command" not in sidecar  # the image's ENTRYPOINT: secretwatch
    check_command(sidecar)


def test_the_ai_core_server_image_is_built_from_the_image() -> None:
    """AI Core's container runs the server's image, built FROM the secretwatch image as
    the container README shows, with the entrypoint as its command and real options; it is
    pulled with a docker registry secret."""
    document = yaml.safe_load((ROOT / "examples" / AICORE).read_text())
    [container] = secretwatch_containers(document)
    assert container["command"] == json.loads(values(stages()[-1], "ENTRYPOINT")[-1])
    check_command(container)
    readme = (CONTAINER / "README.md").read_text()
    assert f"FROM {IMAGE}\n" in readme
    assert f"({container['image']})" in readme.replace("`", "")  # what is pushed
    assert pod_spec(document)["imagePullSecrets"][0]["name"] in readme


def test_the_build_command_tags_the_image_the_manifests_run() -> None:
    """The documented build command builds from the repository's root with this Dockerfile
    and tags the image that the manifests name."""
    command = f"docker build -f examples/container/Dockerfile -t {IMAGE} ."
    assert command in (CONTAINER / "README.md").read_text()
    assert command in DOCKERFILE.read_text()
