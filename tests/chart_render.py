"""The Helm chart rendered with the pinned tools of tools/k8s/install.sh, and read back."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "quax-stream"
INSTALL = ROOT / "tools" / "k8s" / "install.sh"
TOOLS = ROOT / ".tools"
HELM = TOOLS / "bin" / "helm"
KUBECONFORM = TOOLS / "bin" / "kubeconform"
CHECKOV = TOOLS / "checkov" / "bin" / "checkov"
CRD_SCHEMAS = ROOT / "tests" / "k8s-schemas"
RELEASE = "quax"
NAMESPACE = "quax"

Doc = dict[str, Any]

EXTERNAL_BOOTSTRAP = "kafka-0.example.org:9092,kafka-1.example.org:9092"

#: Name → (values files of the chart, --set expressions).
SCENARIOS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "default": ((), ()),
    "dev": (("values-dev.yaml",), ()),
    "prod": (("values-prod.yaml",), ()),
    "kafka-internal": ((), ("kafka.mode=internal",)),
    "kafka-external": (
        (),
        (
            "kafka.mode=external",
            "kafka.external.bootstrapServers=" + EXTERNAL_BOOTSTRAP.replace(",", r"\,"),
        ),
    ),
    "kafka-strimzi": ((), ("kafka.mode=strimzi",)),
    "autoscaling-none": ((), ("fftWorker.autoscaling.mode=none",)),
    "autoscaling-hpa": ((), ("fftWorker.autoscaling.mode=hpa",)),
    "autoscaling-keda": ((), ("fftWorker.autoscaling.mode=keda",)),
    "monitoring": ((), ("monitoring.enabled=true",)),
    "topic-prefix": (
        (),
        (
            "kafka.topicPrefix=site1-",
            "fftWorker.appId=site1-quax-fft-worker",
            "aggregator.appId=site1-quax-aggregator",
        ),
    ),
    "producer-directory": (
        (),
        (
            "producer.source=directory",
            "producer.data.existingClaim=daq-run42",
            "producer.settings.run_id=run42",
        ),
    ),
    "producer-s3": (
        (),
        (
            "producer.source=s3",
            "producer.s3.bucketUrl=s3://quax/daq/run42",
            "producer.s3.endpointUrl=http://seaweedfs.storage:8333",
            "producer.s3.addressingStyle=path",
            "producer.s3.existingSecret=quax-s3",
        ),
    ),
    "archive-s3": (
        (),
        (
            "archiver.s3.url=s3://quax-archive/lab",
            "archiver.s3.endpointUrl=http://seaweedfs.storage:8333",
            "archiver.s3.addressingStyle=path",
            "archiver.s3.existingSecret=quax-s3",
            "api.archive.enabled=true",
        ),
    ),
    "producer-watch-hostpath": (
        (),
        (
            "producer.source=watch",
            "producer.data.hostPath=/mnt/daq",
            "producer.settings.f_lo=9.5e9",
        ),
    ),
    "api-scaled": (
        (),
        (
            "api.replicaCount=3",
            "api.ingress.enabled=true",
            "api.service.type=NodePort",
            "api.service.nodePort=30800",
        ),
    ),
    "no-policies-no-wait": ((), ("networkPolicy.enabled=false", "kafka.waitForTopics=false")),
}


def pinned(name: str) -> str:
    """A version pinned in tools/k8s/install.sh (NAME=value)."""
    match = re.search(rf"^{name}=(\S+)$", INSTALL.read_text(), re.MULTILINE)
    assert match, f"{name} is not pinned in {INSTALL}"
    return match.group(1)


KUBERNETES_VERSION = pinned("KUBERNETES_VERSION").removeprefix("v")
K8S_SCHEMAS = TOOLS / "k8s-schemas" / f"v{KUBERNETES_VERSION}-standalone-strict"


def tool(path: Path) -> Path:
    """A tool of tools/k8s/install.sh; the test fails (never skips) when it is missing."""
    if not path.exists():
        pytest.fail(f"{path} is missing: run tools/k8s/install.sh (make k8s-tools)")
    return path


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm."""
    return subprocess.run(
        [str(tool(HELM)), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )


def helm_args(files: Sequence[str] = (), sets: Sequence[str] = ()) -> list[str]:
    """Values arguments: files of the chart (values-dev.yaml) and --set expressions."""
    args: list[str] = []
    for name in files:
        args += ["-f", str(CHART / name)]
    for expression in sets:
        args += ["--set", expression]
    return args


@cache
def render_text(files: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """`helm template` of the chart (tests included) for the pinned Kubernetes version."""
    result = helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBERNETES_VERSION,
        *helm_args(files, sets),
    )
    if result.returncode != 0:
        pytest.fail(f"helm template {files} {sets} failed:\n{result.stderr}")
    return result.stdout


def render_error(files: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """The error of a `helm template` that must fail."""
    result = helm("template", RELEASE, str(CHART), *helm_args(files, sets))
    assert result.returncode != 0, f"helm template {files} {sets} should have failed"
    return result.stderr


@dataclass(frozen=True)
class Rendered:
    """The objects of one rendering, with lookups by kind and name."""

    docs: tuple[Doc, ...]

    def of_kind(self, kind: str) -> list[Doc]:
        """Every object of a kind."""
        return [doc for doc in self.docs if doc["kind"] == kind]

    def get(self, kind: str, name: str) -> Doc:
        """The one object of that kind and name."""
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
        return found[0]

    def has(self, kind: str, name: str | None = None) -> bool:
        """Whether an object of that kind (and name) was rendered."""
        return any(name is None or doc["metadata"]["name"] == name for doc in self.of_kind(kind))

    def workloads(self) -> Iterator[Doc]:
        """Every object that carries a pod template, and the pods themselves."""
        for doc in self.docs:
            if doc["kind"] in ("Deployment", "StatefulSet", "Job", "Pod"):
                yield doc

    def workload(self, component: str) -> Doc:
        """The Deployment, StatefulSet or Job of a component (quax-<component>[-revision])."""
        name = f"{RELEASE}-{component}"
        found = [
            doc
            for doc in self.docs
            if (doc["kind"] in ("Deployment", "StatefulSet") and doc["metadata"]["name"] == name)
            or (
                doc["kind"] == "Job"
                and doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
            )
        ]
        assert len(found) == 1, f"workload {name}: {len(found)} objects"
        return found[0]

    def env(self, container: Doc) -> dict[str, str]:
        """A container's environment: its ConfigMaps (envFrom), then its env entries."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" not in source:
                continue  # a Secret's keys: not known to the chart
            config_map = self.get("ConfigMap", source["configMapRef"]["name"])
            env.update(config_map.get("data", {}))
        for entry in container.get("env", []):
            assert "value" in entry, f"{entry['name']}: only literal values are expected"
            env[entry["name"]] = entry["value"]
        return env


def render(files: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> Rendered:
    """The parsed objects of a rendering."""
    docs = tuple(doc for doc in yaml.safe_load_all(render_text(files, sets)) if doc)
    return Rendered(docs)


def pod_spec(workload: Doc) -> Doc:
    """The pod spec of a Deployment, StatefulSet, Job or Pod."""
    if workload["kind"] == "Pod":
        return workload["spec"]
    return workload["spec"]["template"]["spec"]


def containers(workload: Doc, *, init: bool = True) -> list[Doc]:
    """The containers of a workload (and its init containers)."""
    spec = pod_spec(workload)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def port_number(container: Doc, port: int | str) -> int:
    """A container port, by number or by name."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert len(numbers) == 1, f"container {container['name']} has no port named {port}"
    return int(numbers[0])
