"""The chart on a real single-node Kubernetes, with real images.

tools/containers/images.sh builds the four images with podman from the Dockerfiles as they are
(against local stand-ins of the base images) and tools/cluster/cluster.sh brings up etcd, the
control plane, containerd, a kubelet, kube-proxy, a CNI bridge and CoreDNS on this machine.
The API server checks every mode of the chart (with the CRDs of Strimzi, KEDA and the
Prometheus Operator installed). The dev values are installed for real in a namespace that
enforces the restricted Pod Security Standard, with the broker in the release (internal
mode, on the broker image's stand-in) and the producer watching a folder on the node. The
test writes a run into that folder step by step, scales the FFT workers 2 → 4 → 1 and
upgrades the release so that every pod is replaced while it streams; every file spectrum
and the run spectrum are checked against scipy's welch over the files, and an uninstall
leaves only the data volumes. The cluster is taken down at the end and the host is checked
to be as it was.
"""

from __future__ import annotations

import json
import os
import shutil
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
from localkafka import free_port
from prometheus_client.parser import text_string_to_metric_families
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


def run(*argv: str | Path, timeout: float = 600, stdin: str | None = None) -> str:
    """Run a command to its end; its output, or the test fails with it."""
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG), "PYTHON": str(ROOT / ".venv/bin/python")}
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        input=stdin,
    )  # fmt: skip
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

NAMESPACE = "quax-e2e"
DAQ_CLAIM = "quax-daq"
#: Pod Security Standards: the namespace admits only pods that meet "restricted".
RESTRICTED = [f"pod-security.kubernetes.io/{mode}=restricted" for mode in ("enforce", "warn")]
#: What stays in the namespace after `helm uninstall`: the StatefulSets' volume claims
#: (the broker's log, the aggregator's tables and the archive outlive a release on
#: purpose), the test's
#: own claim of the DAQ folder, and what Kubernetes puts in every namespace.
KEPT = {
    "persistentvolumeclaim/data-quax-kafka-0",
    "persistentvolumeclaim/data-quax-aggregator-0",
    "persistentvolumeclaim/archive-quax-archiver-0",
    f"persistentvolumeclaim/{DAQ_CLAIM}",
    "configmap/kube-root-ca.crt",
    "serviceaccount/default",
}


def daq_volume(folder: Path) -> str:
    """A read-only PersistentVolume of a folder on the node, bound to the release's claim:
    a restricted namespace admits no hostPath volume in a pod, but a claim of one."""
    return f"""
apiVersion: v1
kind: PersistentVolume
metadata:
  name: {NAMESPACE}-daq
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {{namespace: {NAMESPACE}, name: {DAQ_CLAIM}}}
  hostPath: {{path: "{folder}", type: Directory}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {DAQ_CLAIM}
  namespace: {NAMESPACE}
spec:
  accessModes: [ReadOnlyMany]
  storageClassName: ""
  volumeName: {NAMESPACE}-daq
  resources: {{requests: {{storage: 1Gi}}}}
"""


class Daq:
    """The test as the DAQ: writes the pairs of the run into the watched folder on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written = 0
        self._daq = SyntheticDaq(seed=11, n_samples=SAMPLES, n_fft=N_FFT,
                                 line=AxionLine(frequency_hz=2.5e5, strength=0.5))  # fmt: skip

    def write_until(self, files: int) -> None:
        for number in range(self.written, files):
            pair = write_pair(self.folder, number, *self._daq.samples(number))
            pair.i_path.chmod(0o644)
            pair.q_path.chmod(0o644)
        self.written = max(self.written, files)


@pytest.fixture
def daq_folder() -> Iterator[Path]:
    """The watched folder on the node, readable by the pods' user (pytest's tmp_path is not)."""
    folder = Path(tempfile.mkdtemp(prefix="quax-cluster-daq-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Api:
    base: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10)


class PortForward:
    """`kubectl port-forward svc/quax-api`, started again when the pod behind it is replaced."""

    def __init__(self) -> None:
        self.port = free_port()
        self.api = Api(f"http://127.0.0.1:{self.port}")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.stop()
        self._process = subprocess.Popen(
            [str(KUBECTL), "-n", NAMESPACE, "port-forward", "svc/quax-api", f"{self.port}:8000"],
            env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait(lambda: self.api.get("/readyz").status_code == 200, 120, "the API (port-forward)")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


#: Run in the archiver's container: a run's archived files and the run rebuilt from them.
ARCHIVED_RUN = """
import json, sys
from pathlib import Path
from quaxspec.archive import ArchiveReader, run_moments
reader = ArchiveReader(Path("/var/lib/quax/archive"))
rows = reader.file_rows(sys.argv[1])
moments = run_moments(rows) if rows.num_rows else None
print(json.dumps({
    "files": reader.file_numbers(sys.argv[1]),
    "rows": rows.num_rows,
    "slices": int(moments.n) if moments else 0,
    "mean": moments.mean.tolist() if moments else [],
    "sem": moments.sem.tolist() if moments else [],
}))
"""


def rollout(*workloads: str) -> None:
    for workload in workloads:
        kubectl("-n", NAMESPACE, "rollout", "status", workload, "--timeout=600s", timeout=660)


WORKLOADS = ("statefulset/quax-kafka", "statefulset/quax-aggregator", "deployment/quax-producer",
             "deployment/quax-fft-worker", "deployment/quax-api",
             "statefulset/quax-archiver")  # fmt: skip


@pytest.fixture
def dev_release(cluster: Cluster, daq_folder: Path) -> Iterator[PortForward]:
    """The dev values installed in a namespace that enforces the restricted Pod Security
    Standard, the producer watching an empty folder for the run `cluster-run`; every
    service Ready and the API reached through port-forward."""
    kubectl("create", "namespace", NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, *RESTRICTED)
    run(KUBECTL, "apply", "-f", "-", stdin=daq_volume(daq_folder))
    forward = PortForward()
    try:
        installed = subprocess.run(
            [str(tool(HELM)), "install", RELEASE, str(CHART), "-n", NAMESPACE,
             *helm_args(("values-dev.yaml",), (
                 "producer.source=watch",
                 f"producer.data.existingClaim={DAQ_CLAIM}",
                 "producer.settings.run_id=cluster-run",
                 f"producer.settings.watch_file_samples={SAMPLES}",
             ))],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
        )  # fmt: skip
        assert installed.returncode == 0, installed.stderr
        # The API server warns of every pod template that "restricted" would refuse.
        assert "PodSecurity" not in installed.stderr, installed.stderr
        rollout(*WORKLOADS)
        forward.start()
        yield forward
    finally:
        forward.stop()
        subprocess.run([str(tool(HELM)), "uninstall", RELEASE, "-n", NAMESPACE, "--wait"],
                       env={**os.environ, "KUBECONFIG": str(KUBECONFIG)}, capture_output=True,
                       timeout=300)  # fmt: skip
        kubectl("delete", "namespace", NAMESPACE, "--timeout=300s", timeout=330)
        kubectl("delete", "persistentvolume", f"{NAMESPACE}-daq", "--ignore-not-found")


def wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():  # type: ignore[operator]
                return
        except (httpx.HTTPError, AssertionError):
            pass
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(1)


def files_done(api: Api) -> int:
    response = api.get("/api/v1/runs/cluster-run/files")
    if response.status_code != 200:
        return 0
    return sum(1 for f in response.json() if f["complete"])


def pods(component: str, field: str = "name") -> list[str]:
    """The running pods of a component that are not being shut down: their names, or
    another field of their metadata (a StatefulSet's new pod has the old one's name)."""
    listed = kubectl("-n", NAMESPACE, "get", "pods", "-l",
                     f"app.kubernetes.io/component={component}",
                     "--field-selector=status.phase=Running", "-o",
                     f"jsonpath={{range .items[*]}}{{.metadata.{field}}} "
                     "{.metadata.deletionTimestamp}{'\\n'}{end}")  # fmt: skip
    return sorted(fields[0] for fields in map(str.split, listed.splitlines()) if len(fields) == 1)


def worker_metric(pod: str, name: str) -> float:
    """A worker's metric, read inside its pod (no NetworkPolicy in the way)."""
    text = kubectl("-n", NAMESPACE, "exec", pod, "--", "python", "-c",
                   "import urllib.request; print(urllib.request.urlopen("
                   "'http://127.0.0.1:9101/metrics', timeout=5).read().decode())")  # fmt: skip
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{pod} exports no {name}")


def workers_own(shares: list[int]) -> bool:
    """True when the running workers own these numbers of quax.raw partitions."""
    owned = [int(worker_metric(pod, "quax_fft_assigned_partitions")) for pod in pods("fft-worker")]
    return sorted(owned) == sorted(shares)


def scale_workers(replicas: int) -> None:
    kubectl("-n", NAMESPACE, "scale", "deployment/quax-fft-worker", f"--replicas={replicas}")
    rollout("deployment/quax-fft-worker")


def test_dev_install_streams_an_exact_run_through_scaling_and_an_upgrade(
    dev_release: PortForward, daq_folder: Path
) -> None:
    """The test writes the run into the watched folder step by step and, between steps,
    scales the workers 2 → 4 → 1 and upgrades the release so that every pod of the run is
    replaced; the run is exact against welch, and an uninstall leaves nothing behind."""
    forward, daq = dev_release, Daq(daq_folder)

    def stream(files: int) -> None:
        daq.write_until(files)
        wait(lambda: files_done(forward.api) >= files, 300, f"the first {files} files")

    # Two workers (the dev values), two of the four partitions each.
    stream(4)
    wait(lambda: workers_own([2, 2]), 60, "two workers with two partitions each")

    # Four: one partition each, and every one of them transforms part of the next files.
    scale_workers(4)
    wait(lambda: workers_own([1, 1, 1, 1]), 120, "four workers with a partition each")
    before = {pod: worker_metric(pod, "quax_fft_chunks_total") for pod in pods("fft-worker")}
    stream(10)
    after = {pod: worker_metric(pod, "quax_fft_chunks_total") for pod in before}
    assert all(after[pod] > before[pod] for pod in before), (before, after)

    # Back to one, which takes every partition.
    scale_workers(1)
    wait(lambda: workers_own([4]), 120, "one worker with every partition")
    stream(14)

    # An upgrade that changes the settings every service shares: every pod of the run is
    # replaced (producer, workers, aggregator, API, archiver) while the DAQ goes on writing.
    replaced = {
        c: pods(c, "uid") for c in ("producer", "fft-worker", "aggregator", "api", "archiver")
    }
    helm("upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
         "--set", "logging.json=false")  # fmt: skip
    daq.write_until(18)
    rollout(*WORKLOADS)
    for component, old in replaced.items():
        assert not set(pods(component, "uid")) & set(old), f"{component}: {old} not replaced"
    # The upgrade left the count `kubectl scale` set (Helm 4 applies server-side).
    assert len(pods("fft-worker")) == 1
    forward.start()
    stream(FILES)

    # Exact against the references: welch per file, numpy over every slice for the run.
    api = forward.api
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

    # The archive on the archiver's volume (restarted by the upgrade): every file once, and
    # the run rebuilt from its rows is the run the API serves.
    def archived() -> dict[str, object]:
        listed = kubectl("-n", NAMESPACE, "exec", "statefulset/quax-archiver", "--",
                         "python", "-c", ARCHIVED_RUN, "cluster-run")  # fmt: skip
        return json.loads(listed)  # type: ignore[no-any-return]

    wait(lambda: archived()["slices"] == run_spectrum.slices, 120, "the run archived")
    archive = archived()
    assert archive["files"] == list(range(FILES))
    assert archive["rows"] >= FILES
    np.testing.assert_allclose(archive["mean"], run_spectrum.mean, rtol=1e-12, atol=0)
    np.testing.assert_allclose(archive["sem"], run_spectrum.sem, rtol=1e-12, atol=0)

    # The dashboard through port-forward, and the chart's own test (its pod admitted too).
    index = api.get("/")
    assert index.status_code == 200
    assert "uPlot" in index.text
    assert api.get("/static/vendor/uPlot.iife.min.js").status_code == 200
    helm("test", RELEASE, "-n", NAMESPACE, timeout=300)

    # Uninstalled: nothing of the release is left but the data it keeps on purpose.
    forward.stop()
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", timeout=300)
    kinds = kubectl("api-resources", "--verbs=list", "--namespaced", "-o", "name").split()
    kinds = ",".join(k for k in kinds if k not in ("events", "events.events.k8s.io"))

    def left() -> set[str]:
        listed = kubectl("-n", NAMESPACE, "get", kinds, "-o", "name").split()
        return {f"{kind.split('.')[0]}/{name}" for kind, name in (o.split("/", 1) for o in listed)}

    # The Jobs' pods and the Services' endpoints go a moment after their owners.
    wait(lambda: left() == KEPT, 120, "only the kept claims")
    assert left() == KEPT


# Leaving the host as it was ---------------------------------------------------------------------


def test_down_leaves_the_host_as_it_was(cluster: Cluster) -> None:
    run(CLUSTER, "down", timeout=300)
    assert host_state() == cluster.before
    assert not (ROOT / ".tools" / "cluster" / "state").exists()
