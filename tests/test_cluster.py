"""The chart on a real single-node Kubernetes, with real images.

tools/containers/images.sh builds the four images with podman from the Dockerfiles as they are
(against local stand-ins of the base images) and tools/cluster/cluster.sh brings up etcd, the
control plane, containerd, a kubelet, kube-proxy, a CNI bridge and CoreDNS on this machine.
The API server checks every mode of the chart (with the CRDs of Strimzi, KEDA and the
Prometheus Operator installed); the dev values are installed for real, with the broker in
the release (internal mode, on the broker image's stand-in), stream a run of DAQ files from
a folder on the node while the FFT workers are scaled from 2 to 4, and every file spectrum
and the run spectrum are checked against scipy's welch over the files. The cluster is taken
down at the end and the host is checked to be as it was.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from chart_render import CHART, HELM, SCENARIOS, helm_args, tool
from reference import SliceSums, check_file

from quaxspec.daq import pair_paths, write_pair
from quaxspec.spectra import FileSpectrum, RunSpectrum
from quaxspec.synthetic import AxionLine, SyntheticDaq

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tools" / "cluster" / "cluster.sh"
CRDS = ROOT / "tools" / "cluster" / "crds.sh"
IMAGES = ROOT / "tools" / "containers" / "images.sh"
KUBECTL = ROOT / ".tools" / "cluster" / "bin" / "kubectl"
KUBECONFIG = ROOT / ".tools" / "cluster" / "state" / "admin.kubeconfig"
RELEASE = "quax"
N_FFT = 3072
FILES = 24
SAMPLES = 2**20

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def run(*argv: str | Path, timeout: float = 600) -> str:
    """Run a command to its end; its output, or the test fails with it."""
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG), "PYTHON": str(ROOT / ".venv/bin/python")}
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result.stdout


def kubectl(*args: str, timeout: float = 120) -> str:
    return run(KUBECTL, *args, timeout=timeout)


def helm(*args: str, timeout: float = 600) -> str:
    return run(tool(HELM), *args, timeout=timeout)


def host_state() -> dict[str, object]:
    """What the cluster changes on the host and must put back."""
    iptables = {
        table: sorted(
            line.split()[1]
            for line in subprocess.run(
                ["iptables", "-t", table, "-S"], capture_output=True, text=True, check=True
            ).stdout.splitlines()
            if line.startswith("-N ")
        )
        for table in ("nat", "filter", "mangle")
    }
    sysctls = {
        name: Path("/proc/sys", name.replace(".", "/")).read_text().strip()
        for name in ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops",
                     "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables")
    }  # fmt: skip
    links = sorted(p.name for p in Path("/sys/class/net").iterdir())
    netns = (
        sorted(p.name for p in Path("/var/run/netns").glob("*"))
        if Path("/var/run/netns").is_dir()
        else []
    )
    mounts = sorted(line.split()[1] for line in Path("/proc/mounts").read_text().splitlines())
    return {
        "iptables": iptables,
        "sysctls": sysctls,
        "links": links,
        "netns": netns,
        "mounts": mounts,
    }


@dataclass
class Cluster:
    before: dict[str, object]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    archives = ROOT / ".tools" / "containers" / "archives"
    run(IMAGES, "build", timeout=1800)
    saved = run(IMAGES, "save", archives, timeout=900).split()
    before = host_state()
    try:
        run(CLUSTER, "up", timeout=1800)
        run(CLUSTER, "load", *saved, timeout=900)
        run(CRDS, timeout=300)
        yield Cluster(before)
    finally:
        run(CLUSTER, "down", timeout=300)


# Every mode, checked by the API server -----------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_chart_mode_is_accepted_by_the_api_server(cluster: Cluster, name: str) -> None:
    """`helm install --dry-run=server`: the API server validates every object against its
    schemas and the installed CRDs (Strimzi 1.2, KEDA, Prometheus Operator)."""
    files, sets = SCENARIOS[name]
    namespace = f"dry-{name}"[:63]
    kubectl("create", "namespace", namespace)
    try:
        helm("install", RELEASE, str(CHART), "-n", namespace, "--dry-run=server",
             *helm_args(files, sets))  # fmt: skip
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


def test_the_api_server_refuses_what_a_current_strimzi_removed(cluster: Cluster) -> None:
    """The check above can fail: Strimzi 1.0 serves kafka.strimzi.io/v1 only."""
    manifest = helm("template", RELEASE, str(CHART), "-f", str(CHART / "values-prod.yaml"),
                    "--show-only", "templates/kafka-strimzi.yaml")  # fmt: skip
    old = manifest.replace("kafka.strimzi.io/v1\n", "kafka.strimzi.io/v1beta2\n")
    result = subprocess.run(
        [str(KUBECTL), "apply", "--dry-run=server", "-n", "default", "-f", "-"],
        input=old, capture_output=True, text=True, timeout=60,
        env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
    )  # fmt: skip
    assert result.returncode != 0
    assert 'no matches for kind "Kafka" in version "kafka.strimzi.io/v1beta2"' in result.stderr


# The dev install, streaming a run ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daq_folder() -> Iterator[Path]:
    """DAQ files on the node, readable by the pods' user (pytest's tmp_path is not)."""
    folder = Path(tempfile.mkdtemp(prefix="quax-cluster-daq-"))
    folder.chmod(0o755)
    daq = SyntheticDaq(seed=11, n_samples=SAMPLES, n_fft=N_FFT,
                       line=AxionLine(frequency_hz=2.5e5, strength=0.5))  # fmt: skip
    for number in range(FILES):
        write_pair(folder, number, *daq.samples(number))
    for path in folder.iterdir():
        path.chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Api:
    base: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10)


@dataclass
class Release:
    api: Api
    namespace: str


@pytest.fixture
def dev_release(cluster: Cluster, daq_folder: Path) -> Iterator[Release]:
    """The dev values installed, every service Ready, the producer not yet started: the
    test starts it (helm upgrade), so that the run streams while it watches."""
    namespace = "quax-e2e"
    kubectl("create", "namespace", namespace)
    helm("install", RELEASE, str(CHART), "-n", namespace,
         *helm_args(("values-dev.yaml",), (
             "producer.enabled=false",
             "producer.source=directory",
             f"producer.data.hostPath={daq_folder}",
             "producer.settings.run_id=cluster-run",
             # A pair every 1.5 s: the run streams for over half a minute, long enough to
             # scale the workers while it does.
             "producer.settings.seconds_per_pair=1.5",
         )))  # fmt: skip
    forward: subprocess.Popen[bytes] | None = None
    try:
        for workload in ("statefulset/quax-kafka", "statefulset/quax-aggregator",
                         "deployment/quax-fft-worker", "deployment/quax-api"):  # fmt: skip
            kubectl("-n", namespace, "rollout", "status", workload, "--timeout=600s",
                    timeout=660)  # fmt: skip
        port = free_port()
        forward = subprocess.Popen(
            [str(KUBECTL), "-n", namespace, "port-forward", "svc/quax-api", f"{port}:8000"],
            env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        api = Api(f"http://127.0.0.1:{port}")
        wait(lambda: api.get("/readyz").status_code == 200, 120, "the API through port-forward")
        yield Release(api, namespace)
    finally:
        if forward is not None:
            forward.terminate()
            forward.wait(timeout=10)
        subprocess.run([str(tool(HELM)), "uninstall", RELEASE, "-n", namespace, "--wait"],
                       env={**os.environ, "KUBECONFIG": str(KUBECONFIG)}, capture_output=True,
                       timeout=300)  # fmt: skip
        kubectl("delete", "namespace", namespace, "--timeout=300s", timeout=330)


def wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(1)


def files_done(api: Api) -> int:
    response = api.get("/api/v1/runs/cluster-run/files")
    if response.status_code != 200:
        return 0
    return sum(1 for f in response.json() if f["complete"])


def test_dev_install_streams_an_exact_run_while_the_workers_scale(
    dev_release: Release, daq_folder: Path
) -> None:
    api, namespace = dev_release.api, dev_release.namespace
    helm("upgrade", RELEASE, str(CHART), "-n", namespace, "--reuse-values",
         "--set", "producer.enabled=true")  # fmt: skip
    # Scale the workers from 2 to 4 while the run streams.
    wait(lambda: files_done(api) >= 2, 300, "the first files of the run")
    assert files_done(api) < FILES - 4, "the run ended before the workers could be scaled"
    kubectl("-n", namespace, "scale", "deployment/quax-fft-worker", "--replicas=4")
    kubectl("-n", namespace, "rollout", "status", "deployment/quax-fft-worker", "--timeout=300s",
            timeout=330)  # fmt: skip
    ready = kubectl("-n", namespace, "get", "deployment/quax-fft-worker",
                    "-o", "jsonpath={.status.readyReplicas}")  # fmt: skip
    assert ready == "4"
    assert files_done(api) < FILES, "the run ended before the new workers were Ready"
    wait(lambda: files_done(api) == FILES, 600, f"all {FILES} files of the run")
    kubectl("-n", namespace, "wait", "--for=condition=complete", "job", "-l",
            "app.kubernetes.io/component=producer", "--timeout=120s", timeout=150)  # fmt: skip

    # Exact against the references: welch per file, numpy over every slice for the run.
    sums = SliceSums()
    for number in range(FILES):
        response = api.get(f"/api/v1/runs/cluster-run/files/{number}")
        assert response.status_code == 200, response.text
        spectrum = FileSpectrum.from_bytes(response.content)
        i, q = (np.fromfile(path, dtype="<f4") for path in pair_paths(daq_folder, number))
        sums.add(check_file(spectrum, i, q, N_FFT))
    run_response = api.get("/api/v1/runs/cluster-run")
    assert run_response.status_code == 200
    run_spectrum = RunSpectrum.from_bytes(run_response.content)
    assert run_spectrum.files == FILES
    sums.check(run_spectrum)
    assert np.all(np.isfinite(run_spectrum.mean))

    # The dashboard through port-forward, and the chart's own test.
    index = api.get("/")
    assert index.status_code == 200
    assert "uPlot" in index.text
    assert api.get("/static/vendor/uPlot.iife.min.js").status_code == 200
    helm("test", RELEASE, "-n", namespace, timeout=300)


# Leaving the host as it was ---------------------------------------------------------------------


def test_down_leaves_the_host_as_it_was(cluster: Cluster) -> None:
    run(CLUSTER, "down", timeout=300)
    assert host_state() == cluster.before
    assert not (ROOT / ".tools" / "cluster" / "state").exists()
