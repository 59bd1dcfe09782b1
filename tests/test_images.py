"""The four images, built by podman from their Dockerfiles (tools/containers/images.sh) and run
as they are deployed: user 10001, a read-only root filesystem, /tmp a tmpfs.

The images are built by `make images` (a prerequisite of `make test`); the fixture builds
again, which takes seconds from the layer cache and makes sure the images are those of the
sources under test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from reference import welch

from quaxspec.daq import pair_paths, write_pair
from quaxspec.synthetic import SyntheticDaq

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "tools" / "containers" / "images.sh"
VERSION = "0.1.0"
SERVICES = {
    "producer": "run",
    "fft-worker": "worker",
    "aggregator": "worker",
    "api": "serve",
    "archiver": "run",
}
ENV = {
    **os.environ,
    "CONTAINERS_CONF": str(ROOT / "tools" / "containers" / "containers.conf"),
    "CONTAINERS_STORAGE_CONF": str(ROOT / ".tools" / "containers" / "storage.conf"),
}
#: As the chart runs them: its user, nothing written outside /tmp and the volumes.
AS_DEPLOYED = ("--user", "10001:10001", "--read-only", "--tmpfs", "/tmp:rw,mode=1777",
               "--network", "host")  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def images() -> Iterator[None]:
    result = subprocess.run([str(IMAGES), "build"], capture_output=True, text=True, env=ENV,
                            timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr
    yield
    # podman run mounted the store again: leave no mount behind.
    subprocess.run([str(IMAGES), "unmount"], env=ENV, timeout=60, check=True)


def podman(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def run(
    service: str, *args: str, volumes: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the service's image to its end, as deployed."""
    mounts = [arg for volume in volumes for arg in ("--volume", volume)]
    return podman("run", "--rm", *AS_DEPLOYED, *mounts, f"quax-{service}:{VERSION}", *args)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder the image's user can read and write (pytest's tmp_path is the host user's)."""
    folder = Path(tempfile.mkdtemp(prefix="quax-image-"))
    folder.chmod(0o777)
    yield folder
    podman("unshare", "rm", "-rf", str(folder))
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.mark.parametrize("service", SERVICES)
def test_each_entry_point_starts(service: str) -> None:
    result = run(service, "--help")
    assert result.returncode == 0, result.stderr
    assert SERVICES[service] in result.stdout
    result = run(service, SERVICES[service], "--help")
    assert result.returncode == 0, result.stderr


def test_each_image_runs_as_its_numeric_user_by_default() -> None:
    """The image's USER, without the deployment's --user: runAsNonRoot holds either way."""
    for service in SERVICES:
        result = podman("run", "--rm", "--read-only", "--network", "host", "--entrypoint", "id",
                        f"quax-{service}:{VERSION}")  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("uid=10001(quax) gid=10001(quax)"), service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_api_image_serves_the_dashboard() -> None:
    port = free_port()
    name = f"quax-api-test-{port}"
    # A closed port as the broker: the API serves the dashboard while it retries Kafka.
    started = podman("run", "-d", "--rm", "--name", name, *AS_DEPLOYED,
                     "-e", "QUAX_API_HOST=127.0.0.1", "-e", f"QUAX_API_PORT={port}",
                     "-e", f"QUAX_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{free_port()}",
                     f"quax-api:{VERSION}")  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                index = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                logs = podman("logs", name).stderr
                assert time.monotonic() < deadline, logs
                time.sleep(0.5)
        assert index.status_code == 200
        for asset in ("uPlot.iife.min.js", "uPlot.min.css"):
            assert f"/static/vendor/{asset}" in index.text
            served = httpx.get(f"http://127.0.0.1:{port}/static/vendor/{asset}", timeout=5)
            assert served.status_code == 200
            assert len(served.content) > 1000
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        podman("stop", "--time", "10", name)


def test_producer_image_writes_daq_files(shared: Path) -> None:
    result = run("producer", "generate", "/out", "--files", "1", "--samples", "6144",
                 volumes=(f"{shared}:/out",))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {p.name: p.stat().st_size for p in shared.iterdir()} == {
        "duck_i_00000.dat": 6144 * 4,
        "duck_q_00000.dat": 6144 * 4,
    }


def test_fft_worker_image_computes_welch(shared: Path) -> None:
    """pyFFTW and numba in the image, as its user: the kernel's run spectrum of two files
    is the mean of scipy's welch over each (numba caches in /tmp, the root being read-only)."""
    n_fft = 3072
    daq = SyntheticDaq(seed=5, n_samples=16 * n_fft, n_fft=n_fft)
    expected = []
    for number in range(2):
        i, q = daq.samples(number)
        write_pair(shared, number, i, q)
        expected.append(welch(i, q, n_fft))
    for path in shared.iterdir():
        path.chmod(0o644)
    result = run("fft-worker", "offline", "/run", "--save", "/out/run.npz",
                 volumes=(f"{shared}:/run:ro", f"{shared}:/out"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    saved = np.load(shared / "run.npz")
    assert int(saved["count"]) == 32
    np.testing.assert_allclose(saved["mean"], np.mean(expected, axis=0), rtol=1e-5)
    assert pair_paths(shared, 1)[0].exists()


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_fft_worker_image_has_the_kernel(service: str) -> None:
    """numba, llvmlite and pyFFTW are installed in the FFT worker's image and in no other:
    the kernel is quaxspec's ``kernel`` extra, which only the worker asks for."""
    code = (
        "import importlib.util\n"
        "print(' '.join(m for m in ('numba', 'llvmlite', 'pyfftw')"
        " if importlib.util.find_spec(m)))\n"
    )
    result = podman("run", "--rm", *AS_DEPLOYED, "--entrypoint", "python",
                    f"quax-{service}:{VERSION}", "-c", code)  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = ["numba", "llvmlite", "pyfftw"] if service == "fft-worker" else []
    assert result.stdout.split() == expected


def test_aggregator_image_writes_its_volume(shared: Path) -> None:
    """The aggregator's data directory (a volume in the chart) takes RocksDB as its user."""
    code = (
        "import rocksdict\n"
        "db = rocksdict.Rdict('/var/lib/quax/probe')\n"
        "db['run'] = b'42'\n"
        "db.close()\n"
        "print(rocksdict.Rdict('/var/lib/quax/probe')['run'])\n"
    )
    result = podman("run", "--rm", *AS_DEPLOYED, "--volume", f"{shared}:/var/lib/quax",
                    "--entrypoint", "python", f"quax-aggregator:{VERSION}", "-c", code)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "b'42'"


def test_archiver_image_writes_parquet_to_its_volume(shared: Path) -> None:
    """The archive directory (a volume in the chart) takes a flush as the image's user."""
    code = (
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from quax_archiver.writer import ArchiveWriter, Batch\n"
        "from quaxspec.archive import ArchiveReader\n"
        "from quaxspec.spectra import FileSpectrum\n"
        "v = np.linspace(1.0, 2.0, 8)\n"
        "s = FileSpectrum(run_id='r', file_number=3, n_fft=8, fs=2e6, f_lo=0.0, count=2,\n"
        "    expected_count=2, duplicates=0, revision=0, late_chunks=0, daq_time=1.7e9,\n"
        "    emitted_time=1.7e9, mean=v, std=v, spectral_kurtosis=v)\n"
        "writer = ArchiveWriter(Path('/var/lib/quax/archive'))\n"
        "writer.recover()\n"
        "batch = Batch()\n"
        "batch.advance('quax.spectra', 0, 7)\n"
        "batch.add_file(s, 0, 7)\n"
        "writer.flush(batch)\n"
        "print(sorted(ArchiveReader(Path('/var/lib/quax/archive')).files('r')))\n"
    )
    result = podman("run", "--rm", *AS_DEPLOYED, "--volume", f"{shared}:/var/lib/quax",
                    "--entrypoint", "python", f"quax-archiver:{VERSION}", "-c", code)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[3]"
    assert list((shared / "archive" / "spectra").rglob("part-0-*.parquet"))
