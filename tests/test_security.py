"""The pipeline on a broker that takes only TLS with SCRAM-SHA-512 users.

The test makes its own certificate authority and broker certificate with openssl, starts a
broker of its own (tools/kafka/kafka.sh with QUAX_KAFKA_SASL_SSL_DIR), runs the producer,
two FFT workers and the aggregator against it with a user and a password file, and checks
the run against the references; then clients without credentials, or without TLS, are
refused.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import reference
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from localkafka import LocalKafka
from pipeline import Pipeline

from quaxspec.synthetic import SyntheticDaq

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_FFT = 3072
FS = 2.0e6
SAMPLES = N_FFT * 100 + 17
FILES = 3


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> None:
    """A CA, and a broker certificate for 127.0.0.1 signed by it (PEM files in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=quax test CA",
        "-keyout", "ca.key", "-out", "ca.pem", cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "broker.key", "-out", "broker.csr", cwd=folder,
    )  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.crt", cwd=folder,
    )  # fmt: skip
    # Kafka's PEM key store: the private key (PKCS#8, unencrypted) and the certificate chain.
    key = (folder / "broker.key").read_text()
    chain = (folder / "broker.crt").read_text() + (folder / "ca.pem").read_text()
    (folder / "broker.pem").write_text(key + chain)


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalKafka, str]]:
    folder = tmp_path_factory.mktemp("tls")
    make_certificates(folder)
    password = secrets.token_urlsafe(24)
    (folder / "users").write_text(f"broker {secrets.token_urlsafe(24)}\nquax {password}\n")
    (folder / "quax.password").write_text(password + "\n")
    broker = LocalKafka.fresh(tmp_path_factory.mktemp("kafka-secure"))
    broker.broker_env = {"QUAX_KAFKA_SASL_SSL_DIR": str(folder)}
    broker.client_env = {
        "QUAX_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "QUAX_KAFKA_SASL_USERNAME": "quax",
        "QUAX_KAFKA_SASL_PASSWORD_FILE": str(folder / "quax.password"),
        "QUAX_KAFKA_SSL_CAFILE": str(folder / "ca.pem"),
    }
    broker.run("start")
    try:
        broker.create_topics()  # over the secured listener, as the services' clients
        yield broker, password
    finally:
        broker.run("stop")


def test_the_pipeline_runs_exactly_over_tls_with_scram_users(secure_kafka, tmp_path):
    broker, password = secure_kafka
    pipe = Pipeline(broker, tmp_path)  # creates its topics over the secured listener
    try:
        pipe.start_aggregator()
        pipe.start_worker("fft-worker-1")
        pipe.start_worker("fft-worker-2")
        pipe.produce(
            "producer",
            "--source", "synthetic", "--run-id", "run-tls", "--seed", "21",
            "--files", str(FILES), "--samples-per-file", str(SAMPLES),
        )  # fmt: skip
        outputs = pipe.collect({"run-tls": FILES})
    finally:
        pipe.close()
    logs = pipe.logs()

    daq = SyntheticDaq(seed=21, n_samples=SAMPLES)
    spectra = outputs.run_files("run-tls")
    per_slice = [reference.check_file(spectra[n], *daq.samples(n), N_FFT, FS) for n in range(FILES)]
    run = outputs.runs["run-tls"]
    assert (run.files, run.incomplete_files, run.slices) == (FILES, 0, FILES * 100)
    every = np.concatenate(per_slice)
    np.testing.assert_allclose(run.mean, every.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(run.sem, every.std(axis=0, ddof=1) / np.sqrt(len(every)), rtol=1e-4)
    assert password not in logs  # never logged, by any service


async def _list_topics(**options: object) -> set[str]:
    admin = AIOKafkaAdminClient(request_timeout_ms=5000, **options)  # type: ignore[arg-type]
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_clients_without_credentials_or_tls_are_refused(secure_kafka):
    broker, password = secure_kafka
    context = ssl.create_default_context(cafile=broker.client_env["QUAX_KAFKA_SSL_CAFILE"])
    with_tls_only = {"security_protocol": "SSL", "ssl_context": context}
    wrong_password = {
        "security_protocol": "SASL_SSL",
        "ssl_context": context,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "quax",
        "sasl_plain_password": password + "x",
    }
    for refused in ({}, with_tls_only, wrong_password):
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            asyncio.run(
                asyncio.wait_for(_list_topics(bootstrap_servers=broker.bootstrap, **refused), 30)
            )
    # The right user over TLS is let in, and sees the project's topics.
    topics = asyncio.run(_list_topics(**broker.client_options))
    assert any(topic.endswith("quax.raw") for topic in topics), topics
