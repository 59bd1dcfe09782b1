"""The Helm chart (helm/quax-stream), proven offline with the pinned tools of tools/k8s/install.sh.

The real helm renders the chart for every Kafka mode, every autoscaling mode and the dev and
prod values; kubeconform validates every object strictly against the pinned Kubernetes
release's schemas and the operators' CRD schemas kept in tests/k8s-schemas; checkov lints
the objects. The rest reads the rendered objects: each service's environment against its
settings class, the topics against quaxspec.topics, scaling, security, probes, disruption
budgets and the monitoring objects. A missing tool fails the tests, it never skips them.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_render import (
    CHART,
    CHECKOV,
    CRD_SCHEMAS,
    EXTERNAL_BOOTSTRAP,
    K8S_SCHEMAS,
    KUBECONFORM,
    KUBERNETES_VERSION,
    NAMESPACE,
    RELEASE,
    ROOT,
    SCENARIOS,
    Doc,
    Rendered,
    containers,
    helm,
    helm_args,
    pinned,
    pod_spec,
    port_number,
    render,
    render_error,
    render_text,
    tool,
)
from pydantic_settings import BaseSettings

from quax_aggregator.settings import AggregatorSettings
from quax_api.settings import ApiSettings
from quax_archiver.settings import ArchiverSettings
from quax_fft_worker.settings import FftWorkerSettings
from quax_producer.settings import ProducerSettings
from quaxspec.settings import KafkaSettings, LoggingSettings, S3Settings
from quaxspec.topics import ALL_TOPICS, MAX_MESSAGE_BYTES, RAW, changelog_topics

#: Component → its settings class, environment prefix and the command its image runs.
SERVICES: dict[str, tuple[type[BaseSettings], str, str]] = {
    "producer": (ProducerSettings, "QUAX_PRODUCER_", "run"),
    "fft-worker": (FftWorkerSettings, "QUAX_FFT_WORKER_", "worker"),
    "aggregator": (AggregatorSettings, "QUAX_AGGREGATOR_", "worker"),
    "api": (ApiSettings, "QUAX_API_", "serve"),
    "archiver": (ArchiverSettings, "QUAX_ARCHIVER_", "run"),
}
#: Variables a service container may have besides the fields of the settings classes.
ALLOWED_ENV = {"NUMBA_CACHE_DIR", "AWS_SHARED_CREDENTIALS_FILE"}
#: Linter checks the chart waives, each with its reason in the annotation of the object.
WAIVED_CHECKS = {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_8", "CKV_K8S_9"}
#: The kinds the scenarios render between them: every one is validated.
EXPECTED_KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Job",
    "Kafka",
    "KafkaUser",
    "TriggerAuthentication",
    "KafkaNodePool",
    "KafkaTopic",
    "NetworkPolicy",
    "Pod",
    "PodDisruptionBudget",
    "PodMonitor",
    "PrometheusRule",
    "ScaledObject",
    "Service",
    "ServiceAccount",
    "ServiceMonitor",
    "StatefulSet",
}
RAW_PARTITIONS = RAW.partitions


def scenario(name: str) -> Rendered:
    files, sets = SCENARIOS[name]
    return render(files, sets)


def name_of(component: str) -> str:
    return f"{RELEASE}-{component}"


def service_container(rendered: Rendered, component: str) -> Doc:
    (container,) = (
        c for c in containers(rendered.workload(component), init=False) if c["name"] == component
    )
    return container


def settings_from(cls: type[BaseSettings], env: dict[str, str]) -> Any:
    """The settings a service builds from exactly this environment."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("QUAX_") or key in ALLOWED_ENV:
                patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return cls()


def topic_specs(
    prefix: str = "", aggregator_app_id: str = "quax-aggregator"
) -> dict[str, tuple[int, dict[str, str]]]:
    """The quaxspec topics of one pipeline, the aggregator's changelogs among them."""
    named = [(prefix + spec.name, spec) for spec in ALL_TOPICS]
    named += [(spec.name, spec) for spec in changelog_topics(aggregator_app_id)]
    return {name: (spec.partitions, dict(spec.config)) for name, spec in named}


def in_cluster(service: str, port: int) -> str:
    """The fully qualified address of a Service of the release's namespace."""
    return f"{service}.{NAMESPACE}.svc.cluster.local:{port}"


# Rendering, linting and failing on bad values ------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_chart_renders(name: str) -> None:
    rendered = scenario(name)
    kinds = {doc["kind"] for doc in rendered.docs}
    assert {"Deployment", "StatefulSet", "ConfigMap", "Service", "ServiceAccount", "Pod"} <= kinds
    for doc in rendered.docs:
        assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


def test_every_kind_is_rendered_by_some_scenario() -> None:
    kinds = {doc["kind"] for name in SCENARIOS for doc in scenario(name).docs}
    assert kinds == EXPECTED_KINDS


@pytest.mark.parametrize("files", [(), ("values-dev.yaml",), ("values-prod.yaml",)])
def test_helm_lint_strict(files: tuple[str, ...]) -> None:
    result = helm(
        "lint", "--strict", "--kube-version", KUBERNETES_VERSION, str(CHART), *helm_args(files)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_helm_is_the_pinned_release() -> None:
    result = helm("version", "--template", "{{ .Version }}")
    assert result.stdout.strip() == pinned("HELM_VERSION")


def test_external_kafka_needs_bootstrap_servers() -> None:
    error = render_error(sets=("kafka.mode=external",))
    assert "kafka.external.bootstrapServers is required when kafka.mode is external" in error


def test_more_fft_workers_than_partitions_fails() -> None:
    error = render_error(sets=("fftWorker.replicaCount=5",))
    assert "/fftWorker/replicaCount" in error
    assert "maximum" in error


def test_keda_fallback_beyond_the_partitions_fails() -> None:
    error = render_error(
        sets=("fftWorker.autoscaling.mode=keda", "fftWorker.autoscaling.keda.fallback.replicas=5")
    )
    assert "fallback.replicas 5 is more than the 4 partitions of quax.raw" in error


def test_fewer_raw_partitions_lower_the_worker_limit(tmp_path: Path) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    (raw,) = (t for t in values["kafka"]["topics"] if t["name"] == RAW.name)
    raw["partitions"] = 2
    path = tmp_path / "two-partitions.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"topics": values["kafka"]["topics"]}}))
    error = render_error((str(path),), ("fftWorker.replicaCount=3",))
    assert "fftWorker.replicaCount 3 is more than the 2 partitions of quax.raw" in error


def test_unknown_values_are_refused() -> None:
    assert "additional properties 'replicas' not allowed" in render_error(
        sets=("fftWorker.replicas=2",)
    )
    assert "value must be one of 'internal', 'external', 'strimzi'" in render_error(
        sets=("kafka.mode=kraft",)
    )
    assert "value must be one of 'none', 'hpa', 'keda'" in render_error(
        sets=("fftWorker.autoscaling.mode=both",)
    )
    # A field the chart sets itself cannot be overridden through settings.
    assert "additional properties 'metrics_port' not allowed" in render_error(
        sets=("fftWorker.settings.metrics_port=9999",)
    )


def test_a_directory_source_needs_its_data() -> None:
    error = render_error(sets=("producer.source=watch",))
    assert "producer.source watch reads a directory" in error
    error = render_error(sets=("producer.source=s3",))
    assert "producer.source s3 reads a bucket: set producer.s3.bucketUrl" in error
    error = render_error(sets=("producer.source=s3", "producer.s3.bucketUrl=http://x/y"))
    assert "at '/producer/s3/bucketUrl': 'http://x/y' does not match pattern" in error
    error = render_error(sets=("archiver.s3.url=quax-archive/lab",))
    assert "at '/archiver/s3/url': 'quax-archive/lab' does not match pattern" in error


def test_an_s3_source_is_a_replay_job_with_its_store_and_credentials_and_no_volume() -> None:
    rendered = scenario("producer-s3")
    job = rendered.workload("producer")
    assert job["kind"] == "Job"
    [container] = containers(job, init=False)
    env = rendered.env(container)
    assert env["QUAX_PRODUCER_SOURCE"] == "s3"
    assert env["QUAX_PRODUCER_BUCKET_URL"] == "s3://quax/daq/run42"
    assert env["QUAX_S3_ENDPOINT_URL"] == "http://seaweedfs.storage:8333"
    assert env["QUAX_S3_ADDRESSING_STYLE"] == "path"
    assert "QUAX_PRODUCER_DIRECTORY" not in env
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/quax/s3/credentials"
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert set(volumes) == {"tmp", "s3-credentials"}
    assert volumes["s3-credentials"]["secret"]["secretName"] == "quax-s3"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/quax/s3"]["readOnly"] is True
    settings = settings_from(ProducerSettings, env)
    assert (settings.source, settings.bucket_url) == ("s3", "s3://quax/daq/run42")
    assert settings.s3.endpoint_url == "http://seaweedfs.storage:8333"
    assert settings.s3.addressing_style == "path"


def test_an_archive_in_an_object_store_has_no_volume_and_the_api_reads_the_same_prefix() -> None:
    rendered = scenario("archive-s3")
    assert "volumeClaimTemplates" not in rendered.workload("archiver")["spec"]
    containers_of = {name: service_container(rendered, name) for name in ("archiver", "api")}
    written = settings_from(ArchiverSettings, rendered.env(containers_of["archiver"]))
    read = settings_from(ApiSettings, rendered.env(containers_of["api"]))
    assert written.s3_url == read.archive_s3_url == "s3://quax-archive/lab"
    assert read.archive_directory is None
    for store in (written.s3, read.s3):
        assert store.endpoint_url == "http://seaweedfs.storage:8333"
        assert store.addressing_style == "path"
    for name, container in containers_of.items():
        volumes = {v["name"]: v for v in pod_spec(rendered.workload(name))["volumes"]}
        assert set(volumes) == {"tmp", "s3-credentials"}, name
        assert volumes["s3-credentials"]["secret"]["secretName"] == "quax-s3"
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/quax/s3"]["readOnly"] is True
        assert rendered.env(container)["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/quax/s3/credentials"


@pytest.mark.s3
def test_the_archive_env_the_chart_renders_reaches_a_real_store(s3, tmp_path: Path) -> None:
    """The archiver's and the API's ConfigMaps of the archive-s3 mode, with the endpoint and
    the mounted credentials file pointed at a real store (SeaweedFS): what the archiver writes
    there, the API's settings read back. pyarrow's S3 client (the AWS SDK for C++) finds the
    keys through AWS_SHARED_CREDENTIALS_FILE alone."""
    s3.bucket("quax-archive")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {s3.access_key}\naws_secret_access_key = {s3.secret_key}\n"
    )
    rendered = scenario("archive-s3")

    def run(component: str, script: str) -> str:
        env = rendered.env(service_container(rendered, component))
        assert env.pop("AWS_SHARED_CREDENTIALS_FILE") == "/etc/quax/s3/credentials"
        env |= {
            "QUAX_S3_ENDPOINT_URL": s3.endpoint,
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
            "HOME": str(tmp_path),
            "PATH": os.environ["PATH"],
        }
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", script],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(
        "archiver",
        "from quax_archiver.settings import ArchiverSettings\n"
        "from quaxspec.archive import open_archive\n"
        "s = ArchiverSettings()\n"
        "place = open_archive(s.s3_url, s.s3)\n"
        "with place.filesystem.open_output_stream(place.path('probe')) as out:\n"
        "    out.write(b'written by the archiver')\n",
    )
    read = run(
        "api",
        "from quax_api.settings import ApiSettings\n"
        "from quaxspec.archive import open_archive\n"
        "s = ApiSettings()\n"
        "place = open_archive(s.archive_s3_url, s.s3)\n"
        "with place.filesystem.open_input_stream(place.path('probe')) as stream:\n"
        "    print(stream.read().decode())\n",
    )
    assert read.strip() == "written by the archiver"
    listed = s3.client().list_objects_v2(Bucket="quax-archive", Prefix="lab/")
    assert [o["Key"] for o in listed["Contents"]] == ["lab/probe"]


# Strict schemas and the linter -----------------------------------------------------------------


def test_every_object_validates_against_the_pinned_schemas(tmp_path: Path) -> None:
    tool(KUBECONFORM)
    if not (K8S_SCHEMAS / ".complete").exists():
        pytest.fail(f"{K8S_SCHEMAS} is missing: run tools/k8s/install.sh (make k8s-tools)")
    files, count = [], 0
    for name in SCENARIOS:
        path = tmp_path / f"{name}.yaml"
        path.write_text(render_text(*SCENARIOS[name]))
        files.append(str(path))
        count += len(scenario(name).docs)
    result = subprocess.run(
        [
            str(KUBECONFORM),
            "-strict",
            "-summary",
            "-verbose",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            str(K8S_SCHEMAS.parent)
            + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
            + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
            "-schema-location",
            str(CRD_SCHEMAS) + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    problems = [r for r in report["resources"] if r["status"] != "statusValid"]
    assert not problems, json.dumps(problems, indent=1)
    assert result.returncode == 0, result.stderr
    assert report["summary"] == {"valid": count, "invalid": 0, "errors": 0, "skipped": 0}


@pytest.mark.slow
def test_the_linter_passes_with_justified_waivers(tmp_path: Path) -> None:
    for name in SCENARIOS:
        (tmp_path / f"{name}.yaml").write_text(render_text(*SCENARIOS[name]))
    result = subprocess.run(
        [
            str(tool(CHECKOV)),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in results["failed_checks"]]
    assert not failed, failed
    assert not results["parsing_errors"]
    assert report["summary"]["passed"] > 0
    assert result.returncode == 0, result.stderr
    for check in results["skipped_checks"]:
        assert check["check_id"] in WAIVED_CHECKS, check["check_id"]
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check


# Each service's environment against its settings class -------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("component", SERVICES)
def test_service_env_is_made_of_settings_fields(name: str, component: str) -> None:
    rendered = scenario(name)
    cls, prefix, command = SERVICES[component]
    workload = rendered.workload(component)
    for container in containers(workload):
        env = rendered.env(container)
        for variable in env:
            if variable in ALLOWED_ENV:
                continue
            if variable.startswith("QUAX_KAFKA_"):
                field, fields = variable.removeprefix("QUAX_KAFKA_").lower(), KafkaSettings
            elif variable.startswith("QUAX_LOG_"):
                field, fields = variable.removeprefix("QUAX_LOG_").lower(), LoggingSettings
            elif variable.startswith("QUAX_S3_"):
                field, fields = variable.removeprefix("QUAX_S3_").lower(), S3Settings
            else:
                assert variable.startswith(prefix), f"{component}: {variable} is not read"
                field, fields = variable.removeprefix(prefix).lower(), cls
                assert field not in ("kafka", "logging"), variable
            assert field in fields.model_fields, f"{component}: {variable} is no settings field"

    container = service_container(rendered, component)
    assert container["args"] == [command]
    env = rendered.env(container)
    settings = settings_from(cls, env)
    assert settings.kafka.bootstrap_servers == bootstrap_servers(rendered)
    assert settings.kafka.max_message_bytes >= MAX_MESSAGE_BYTES
    assert settings.logging.json_format is True
    if component == "fft-worker":  # the only service with the kernel, hence numba
        assert env["NUMBA_CACHE_DIR"].startswith("/tmp/")
    else:
        assert "NUMBA_CACHE_DIR" not in env
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "the writable /tmp must be an emptyDir"
    if component == "api":
        assert settings.host == "0.0.0.0"
        service = rendered.get("Service", name_of("api"))
        (port,) = service["spec"]["ports"]
        assert settings.port == port_number(container, port["targetPort"])
    else:
        (metrics,) = (p for p in container["ports"] if p["name"] == "metrics")
        assert settings.metrics_port == metrics["containerPort"] > 0
    if component == "aggregator":
        assert settings.store == "rocksdb://"
        (template,) = workload["spec"]["volumeClaimTemplates"]
        assert mounts[str(settings.data_dir)] == template["metadata"]["name"]
    if component == "archiver" and settings.s3_url is not None:
        assert settings.s3_url == rendered_values(name)["archiver"]["s3"]["url"]
        assert "volumeClaimTemplates" not in workload["spec"]
    elif component == "archiver":
        (template,) = workload["spec"]["volumeClaimTemplates"]
        (on_claim,) = [p for p, volume in mounts.items() if volume == template["metadata"]["name"]]
        assert settings.directory.is_relative_to(on_claim)
    if component == "fft-worker":
        assert str(settings.data_dir).startswith("/tmp/")
        assert settings.app_id == rendered_values(name)["fftWorker"]["appId"]
    if component == "producer":
        values = rendered_values(name)["producer"]
        assert settings.source == values["source"]
        if values["source"] in ("directory", "watch"):
            assert str(settings.directory) == values["data"]["mountPath"]
            assert mounts[values["data"]["mountPath"]] == "daq"
        else:
            assert "daq" not in mounts.values()
        if values["source"] == "s3":
            assert settings.bucket_url == values["s3"]["bucketUrl"]


def rendered_values(name: str) -> dict[str, Any]:
    """The values of a scenario: values.yaml, its files, then its --set expressions."""
    files, sets = SCENARIOS[name]
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    for file in files:
        values = merge(values, yaml.safe_load((CHART / file).read_text()))
    for expression in sets:
        key, _, value = expression.partition("=")
        node = values
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = yaml.safe_load(value.replace(r"\,", ","))
    return values


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def bootstrap_servers(rendered: Rendered) -> str:
    """Where the chart's Kafka is, from the Kafka objects it rendered."""
    if rendered.has("StatefulSet", name_of("kafka")):
        service = rendered.get("Service", name_of("kafka"))
        (port,) = service["spec"]["ports"]
        return in_cluster(service["metadata"]["name"], port["port"])
    if rendered.of_kind("Kafka"):
        (kafka,) = rendered.of_kind("Kafka")
        (listener,) = kafka["spec"]["kafka"]["listeners"]
        assert listener["type"] == "internal"
        secured = listener.get("authentication") == {"type": "scram-sha-512"}
        assert listener["tls"] is secured, "TLS and SCRAM go together"
        return in_cluster(f"{kafka['metadata']['name']}-kafka-bootstrap", listener["port"])
    return EXTERNAL_BOOTSTRAP


def test_bootstrap_servers_of_each_kafka_mode() -> None:
    expected = {
        "kafka-internal": "quax-kafka.quax.svc.cluster.local:9092",
        "kafka-external": EXTERNAL_BOOTSTRAP,
        "kafka-strimzi": "quax-kafka-bootstrap.quax.svc.cluster.local:9093",
    }
    for name, servers in expected.items():
        common = scenario(name).get("ConfigMap", name_of("common"))
        assert common["data"]["QUAX_KAFKA_BOOTSTRAP_SERVERS"] == servers


def test_values_schema_settings_are_the_settings_fields() -> None:
    """`settings` of each component accepts exactly the fields the chart does not set itself."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    owned = {
        "producer": {"source", "directory", "bucket_url", "metrics_port"},
        "fftWorker": {"app_id", "metrics_port", "data_dir"},
        "aggregator": {"app_id", "store", "data_dir", "metrics_port", "upstream_group"},
        "api": {"host", "port", "archive_directory", "archive_s3_url"},
        "archiver": {"directory", "s3_url", "group_id", "metrics_port"},
    }
    classes = {
        "producer": ProducerSettings,
        "fftWorker": FftWorkerSettings,
        "aggregator": AggregatorSettings,
        "api": ApiSettings,
        "archiver": ArchiverSettings,
    }
    for key, cls in classes.items():
        accepted = set(schema["properties"][key]["properties"]["settings"]["properties"])
        nested = {"kafka", "logging", "s3"} & set(cls.model_fields)  # QUAX_KAFKA_*, QUAX_S3_*, …
        assert accepted | owned[key] | nested == set(cls.model_fields), key
        assert not accepted & owned[key]


def test_settings_overrides_reach_the_service() -> None:
    rendered = scenario("producer-watch-hostpath")
    env = rendered.env(service_container(rendered, "producer"))
    settings = settings_from(ProducerSettings, env)
    assert settings.f_lo == 9.5e9
    assert settings.source == "watch"


def test_list_settings_reach_the_service_as_json() -> None:
    origins = ["https://grafana.lab.example:3000", "http://localhost:3000"]
    rendered = render(
        sets=tuple(f"api.settings.allowed_origins[{i}]={o}" for i, o in enumerate(origins))
    )
    env = rendered.env(service_container(rendered, "api"))
    assert settings_from(ApiSettings, env).allowed_origins == origins


# Topics ------------------------------------------------------------------------------------------


def test_values_list_the_quaxspec_topics() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    listed = {t["name"]: (t["partitions"], t["config"]) for t in values["kafka"]["topics"]}
    assert listed == {spec.name: (spec.partitions, spec.config) for spec in ALL_TOPICS}


def created_topics(job: Doc) -> dict[str, tuple[int, dict[str, str]]]:
    """The topics a topics Job creates, read from its kafka-topics.sh command lines."""
    (container,) = pod_spec(job)["containers"]
    script = container["command"][-1]
    topics: dict[str, tuple[int, dict[str, str]]] = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if not words or not words[0].endswith("/kafka-topics.sh") or "--create" not in words:
            continue
        assert words[0] == "/opt/kafka/bin/kafka-topics.sh"
        assert "--if-not-exists" in words
        options: dict[str, list[str]] = {}
        for flag, value in itertools.pairwise(words):
            if flag.startswith("--") and not value.startswith("--"):
                options.setdefault(flag, []).append(value)
        (name,) = options["--topic"]
        (partitions,) = options["--partitions"]
        (replication,) = options["--replication-factor"]
        assert int(replication) >= 1
        config = dict(item.split("=", 1) for item in options.get("--config", []))
        assert name not in topics
        topics[name] = (int(partitions), config)
    return topics


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("default", ""), ("kafka-external", ""), ("dev", ""), ("topic-prefix", "site1-")],
)
def test_topics_job_creates_the_quaxspec_topics(name: str, prefix: str) -> None:
    rendered = scenario(name)
    (job,) = rendered.of_kind("Job")
    app_id = rendered.env(service_container(rendered, "aggregator"))["QUAX_AGGREGATOR_APP_ID"]
    assert app_id.startswith(prefix)
    assert created_topics(job) == topic_specs(prefix, app_id)
    (container,) = pod_spec(job)["containers"]
    assert container["image"] == f"apache/kafka:{kafka_version()}"
    assert f'bootstrap="{bootstrap_servers(rendered)}"' in container["command"][-1]


def test_strimzi_topics_are_the_quaxspec_topics() -> None:
    rendered = scenario("prod")
    assert not rendered.of_kind("Job")
    (kafka,) = rendered.of_kind("Kafka")
    topics = {}
    for topic in rendered.of_kind("KafkaTopic"):
        assert topic["apiVersion"] == "kafka.strimzi.io/v1"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        spec = topic["spec"]
        assert spec["replicas"] == 3
        topics[spec["topicName"]] = (spec["partitions"], spec["config"])
    assert topics == topic_specs()
    (pool,) = rendered.of_kind("KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    config = kafka["spec"]["kafka"]["config"]
    assert config["message.max.bytes"] >= MAX_MESSAGE_BYTES
    assert config["auto.create.topics.enable"] is False


def test_strimzi_resources_are_v1_and_leave_the_kafka_version_to_the_operator() -> None:
    """Strimzi 1.0 removed v1beta2, and no Kafka version is run by every Strimzi 1.x."""
    for name in ("prod", "kafka-strimzi"):
        rendered = scenario(name)
        strimzi = [doc for doc in rendered.docs if doc["apiVersion"].startswith("kafka.strimzi.io")]
        assert {doc["kind"] for doc in strimzi} >= {"Kafka", "KafkaNodePool", "KafkaTopic"}
        assert {doc["apiVersion"] for doc in strimzi} == {"kafka.strimzi.io/v1"}
        (kafka,) = rendered.of_kind("Kafka")
        assert "version" not in kafka["spec"]["kafka"]
    files, sets = SCENARIOS["prod"]
    (kafka,) = render(files, (*sets, "kafka.strimzi.version=4.2.0")).of_kind("Kafka")
    assert kafka["spec"]["kafka"]["version"] == "4.2.0"


def kafka_version() -> str:
    pom = (ROOT / "tools" / "kafka" / "pom.xml").read_text()
    return pom.split("<kafka.version>")[1].split("</kafka.version>")[0]


def test_internal_kafka_is_a_single_kraft_node() -> None:
    rendered = scenario("default")
    broker = rendered.get("StatefulSet", name_of("kafka"))
    spec = pod_spec(broker)
    assert broker["spec"]["replicas"] == 1
    assert spec["enableServiceLinks"] is False
    (container,) = spec["containers"]
    assert container["image"] == f"apache/kafka:{kafka_version()}" == "apache/kafka:4.1.1"
    env = rendered.env(container)
    assert env["KAFKA_NODE_ID"] == "1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://0.0.0.0:9092" in env["KAFKA_LISTENERS"]
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= MAX_MESSAGE_BYTES
    assert int(env["KAFKA_REPLICA_FETCH_MAX_BYTES"]) >= MAX_MESSAGE_BYTES
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for key in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
        assert env[f"KAFKA_{key}_REPLICATION_FACTOR"] == "1"
    headless = rendered.get("Service", broker["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    advertised = f"PLAINTEXT://{name_of('kafka')}-0.{headless['metadata']['name']}.{NAMESPACE}.svc."
    assert env["KAFKA_ADVERTISED_LISTENERS"].startswith(advertised)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["KAFKA_LOG_DIRS"] in mounts
    (template,) = broker["spec"]["volumeClaimTemplates"]
    assert template["spec"]["resources"]["requests"]["storage"]


# Scaling -----------------------------------------------------------------------------------------


REPLICA_COUNT = "quax-stream/replica-count"


def without_worker_replicas(rendered: Rendered) -> list[Doc]:
    docs = json.loads(json.dumps(rendered.docs))
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name_of("fft-worker"):
            doc["spec"].pop("replicas")
            doc["metadata"]["annotations"].pop(REPLICA_COUNT)
    return docs


def test_scaling_the_workers_changes_only_their_replicas() -> None:
    two = render(sets=("fftWorker.replicaCount=2",))
    four = render(sets=("fftWorker.replicaCount=4",))
    assert two.workload("fft-worker")["spec"]["replicas"] == 2
    assert four.workload("fft-worker")["spec"]["replicas"] == 4
    # What the values gave, so that an upgrade can keep a count `kubectl scale` set.
    assert two.workload("fft-worker")["metadata"]["annotations"][REPLICA_COUNT] == "2"
    assert without_worker_replicas(two) == without_worker_replicas(four)


@pytest.mark.parametrize("mode", ["none", "hpa", "keda"])
def test_autoscaling_modes(mode: str) -> None:
    rendered = scenario(f"autoscaling-{mode}")
    deployment = rendered.workload("fft-worker")
    hpas, scaled = rendered.of_kind("HorizontalPodAutoscaler"), rendered.of_kind("ScaledObject")
    if mode == "none":
        assert deployment["spec"]["replicas"] == 2
        assert not hpas
        assert not scaled
        return
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name_of("fft-worker")}
    if mode == "hpa":
        assert not scaled
        (hpa,) = hpas
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == target
        assert hpa["spec"]["maxReplicas"] == RAW_PARTITIONS == 4
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
    else:
        assert not hpas
        (keda,) = scaled
        assert keda["apiVersion"] == "keda.sh/v1alpha1"
        assert keda["spec"]["scaleTargetRef"] == target
        assert keda["spec"]["maxReplicaCount"] == RAW_PARTITIONS == 4
        (trigger,) = keda["spec"]["triggers"]
        env = rendered.env(service_container(rendered, "fft-worker"))
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == env["QUAX_FFT_WORKER_APP_ID"]
        assert trigger["metadata"]["topic"] == env["QUAX_KAFKA_TOPIC_PREFIX"] + RAW.name
        assert trigger["metadata"]["bootstrapServers"] == env["QUAX_KAFKA_BOOTSTRAP_SERVERS"]


def test_prod_scales_workers_with_keda_on_strimzi() -> None:
    rendered = scenario("prod")
    (keda,) = rendered.of_kind("ScaledObject")
    assert keda["spec"]["triggers"][0]["metadata"]["bootstrapServers"] == (
        "quax-kafka-bootstrap.quax.svc.cluster.local:9093"
    )
    assert "replicas" not in rendered.workload("fft-worker")["spec"]


def test_fixed_replicas_of_producer_and_aggregator() -> None:
    rendered = scenario("default")
    producer = rendered.workload("producer")
    assert producer["kind"] == "Deployment"  # an endless synthetic DAQ
    assert producer["spec"]["replicas"] == 1
    assert producer["spec"]["strategy"] == {"type": "Recreate"}
    aggregator = rendered.workload("aggregator")
    assert aggregator["kind"] == "StatefulSet"
    assert aggregator["spec"]["replicas"] == 1
    headless = rendered.get("Service", aggregator["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert rendered.workload("api")["kind"] == "Deployment"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("producer-watch-hostpath", "Deployment"),
        ("producer-directory", "Job"),
        ("dev", "Deployment"),
    ],
)
def test_a_replay_is_a_job_and_a_watched_folder_a_deployment(name: str, kind: str) -> None:
    rendered = scenario(name)
    producer = rendered.workload("producer")
    assert producer["kind"] == kind
    producers = [
        doc
        for doc in rendered.workloads()
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "producer"
    ]
    assert producers == [producer]  # one or the other, never both
    if kind == "Job":
        assert pod_spec(producer)["restartPolicy"] == "OnFailure"
        assert producer["spec"]["backoffLimit"] > 0
        assert producer["metadata"]["name"].endswith("-1")  # one per revision


def test_a_finite_synthetic_replay_is_a_job_too() -> None:
    rendered = render(sets=("producer.settings.files=100",))
    assert rendered.workload("producer")["kind"] == "Job"


def test_the_aggregator_watches_the_fft_workers_group() -> None:
    rendered = scenario("topic-prefix")
    env = rendered.env(service_container(rendered, "aggregator"))
    assert env["QUAX_AGGREGATOR_UPSTREAM_GROUP"] == "site1-quax-fft-worker"
    settings = settings_from(AggregatorSettings, env)
    assert (
        settings.upstream_group
        == rendered.env(service_container(rendered, "fft-worker"))["QUAX_FFT_WORKER_APP_ID"]
    )


# Security, probes, resources, disruption budgets ------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_container_is_locked_down(name: str) -> None:
    rendered = scenario(name)
    for workload in rendered.workloads():
        spec = pod_spec(workload)
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = spec["securityContext"]
        assert spec["automountServiceAccountToken"] is False, where
        assert rendered.has("ServiceAccount", spec["serviceAccountName"]), where
        assert pod["runAsNonRoot"] is True, where
        assert isinstance(pod["fsGroup"], int), where
        assert pod["fsGroup"] > 0, where
        for container in containers(workload):
            context = {**pod, **container["securityContext"]}
            assert context["runAsNonRoot"] is True, where
            for key in ("runAsUser", "runAsGroup"):
                assert isinstance(context[key], int), f"{where}: {key}"
                assert context[key] > 0, f"{where}: {key}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context.get("privileged", False) is False, where
            assert "ALL" in context["capabilities"]["drop"], where
            assert not context["capabilities"].get("add"), where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{where}: {kind}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_service_container_has_probes(name: str) -> None:
    rendered = scenario(name)
    for workload in rendered.workloads():
        component = workload["metadata"]["labels"].get("app.kubernetes.io/component")
        if workload["kind"] not in ("Deployment", "StatefulSet") and component != "producer":
            continue  # the topics Job and the test pod run to completion
        for container in containers(workload, init=False):
            where = f"{workload['metadata']['name']}/{container['name']}"
            for probe in ("livenessProbe", "readinessProbe"):
                action = container[probe]
                if component == "kafka":
                    assert action["exec"]["command"][0] == "bash", f"{where}: {probe}"
                    continue
                check = action.get("httpGet") or action.get("tcpSocket")
                assert check, f"{where}: {probe}"
                port_number(container, check["port"])  # a declared port
    api = service_container(rendered, "api")
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert port_number(api, api["readinessProbe"]["httpGet"]["port"]) == 8000
    for component in ("producer", "fft-worker", "aggregator"):
        container = service_container(rendered, component)
        env = rendered.env(container)
        prefix = SERVICES[component][1]
        for probe in ("livenessProbe", "readinessProbe"):
            check = container[probe]["httpGet"]
            assert check["path"] == "/metrics"
            assert port_number(container, check["port"]) == int(env[prefix + "METRICS_PORT"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_grace_periods_allow_a_clean_shutdown(name: str) -> None:
    rendered = scenario(name)
    for component in SERVICES:
        spec = pod_spec(rendered.workload(component))
        assert spec["terminationGracePeriodSeconds"] >= 15, component


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ((), {"fft-worker"}),
        (("fftWorker.replicaCount=1",), set()),
        (("fftWorker.replicaCount=1", "fftWorker.autoscaling.mode=hpa"), {"fft-worker"}),
        (("fftWorker.replicaCount=1", "fftWorker.autoscaling.mode=keda"), {"fft-worker"}),
        (("api.replicaCount=2", "fftWorker.replicaCount=1"), {"api"}),
        (("api.replicaCount=3",), {"api", "fft-worker"}),
    ],
)
def test_disruption_budgets_where_more_than_one_replica(
    sets: tuple[str, ...], expected: set[str]
) -> None:
    rendered = render(sets=sets)
    budgets = {}
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        component = pdb["metadata"]["labels"]["app.kubernetes.io/component"]
        workload = rendered.workload(component)
        assert pdb["spec"]["selector"] == workload["spec"]["selector"]
        budgets[component] = pdb
    assert set(budgets) == expected


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_network_policy_blocks_a_probe(name: str) -> None:
    """A probe over the network reaches a port its pod admits from anywhere: the kubelet's
    traffic comes from the node, which a policy's selectors do not name (and some CNIs
    enforce policies on it). Probes of ports admitted only from some peers run inside
    their container (exec)."""
    rendered = scenario(name)
    policies = rendered.of_kind("NetworkPolicy")
    for workload in rendered.workloads():
        if workload["kind"] == "Pod":
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        selecting = [
            p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]
        for container in containers(workload, init=False):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                action = container.get(probe, {})
                check = action.get("httpGet") or action.get("tcpSocket") or action.get("grpc")
                if check is None or not selecting:
                    continue
                port = port_number(container, check["port"])
                open_to_all = [
                    rule
                    for policy in selecting
                    for rule in policy["spec"].get("ingress", [])
                    if "from" not in rule
                    and any(port_number(container, p["port"]) == port for p in rule["ports"])
                ]
                assert open_to_all, f"{workload['metadata']['name']}/{container['name']}: {probe}"


def test_keda_reaches_the_internal_broker() -> None:
    """KEDA's operator reads the lag from its own namespace: a fully qualified address, a
    NetworkPolicy that admits it, and a fallback when it cannot read."""
    rendered = scenario("autoscaling-keda")
    (keda,) = rendered.of_kind("ScaledObject")
    (trigger,) = keda["spec"]["triggers"]
    assert trigger["metadata"]["bootstrapServers"] == in_cluster(name_of("kafka"), 9092)
    assert keda["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 2}
    broker = rendered.get("NetworkPolicy", name_of("kafka"))
    (rule,) = broker["spec"]["ingress"]
    keda_namespace = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    assert keda_namespace in rule["from"]
    broker = scenario("default").get("NetworkPolicy", name_of("kafka"))
    assert keda_namespace not in broker["spec"]["ingress"][0]["from"]


def test_network_policies_select_every_pod() -> None:
    rendered = scenario("default")
    selectors = [p["spec"]["podSelector"]["matchLabels"] for p in rendered.of_kind("NetworkPolicy")]
    for workload in rendered.workloads():
        labels = (
            workload["metadata"]["labels"]
            if workload["kind"] == "Pod"
            else workload["spec"]["template"]["metadata"]["labels"]
        )
        assert any(s.items() <= labels.items() for s in selectors), workload["metadata"]["name"]


# Images, the API's Service and Ingress, the helm test pod -------------------------------------


def test_images_default_to_the_app_version() -> None:
    rendered = scenario("default")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == "0.1.0"
    for component in SERVICES:
        container = service_container(rendered, component)
        assert container["image"] == f"quax-{component}:{chart['appVersion']}"
        assert container["imagePullPolicy"] == "IfNotPresent"


def test_api_service_and_ingress() -> None:
    rendered = scenario("api-scaled")
    service = rendered.get("Service", name_of("api"))
    assert service["spec"]["type"] == "NodePort"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8000
    assert port["nodePort"] == 30800
    (ingress,) = rendered.of_kind("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": name_of("api"), "port": {"name": port["name"]}}
    assert rendered.workload("api")["spec"]["replicas"] == 3
    assert not scenario("default").of_kind("Ingress")


def test_helm_test_pod_asks_the_api() -> None:
    rendered = scenario("default")
    (pod,) = rendered.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    api = service_container(rendered, "api")
    assert container["image"] == api["image"], "the test runs the API image, already loaded"
    script = container["command"][-1]
    service = rendered.get("Service", name_of("api"))
    assert f'"http://{name_of("api")}:{service["spec"]["ports"][0]["port"]}"' in script
    assert '"/readyz"' in script
    assert '"/api/v1/runs"' in script
    compile(script, "api-test", "exec")


def test_init_containers_wait_for_the_topics() -> None:
    rendered = scenario("default")
    for component in SERVICES:
        (init,) = pod_spec(rendered.workload(component))["initContainers"]
        assert init["image"] == service_container(rendered, component)["image"]
        compile(init["command"][-1], "wait-for-topics", "exec")
    for component in SERVICES:
        assert "initContainers" not in pod_spec(scenario("no-policies-no-wait").workload(component))


# Monitoring ---------------------------------------------------------------------------------------


def test_monitoring_is_off_by_default() -> None:
    rendered = scenario("default")
    for kind in ("PodMonitor", "ServiceMonitor", "PrometheusRule"):
        assert not rendered.of_kind(kind)
    assert not any(
        "grafana_dashboard" in c["metadata"]["labels"] for c in rendered.of_kind("ConfigMap")
    )


def test_monitoring_objects() -> None:
    rendered = render(
        sets=("monitoring.enabled=true", "monitoring.serviceMonitor.labels.release=prom-test")
    )
    monitors = rendered.of_kind("PodMonitor")
    assert {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors} == {
        "producer",
        "fft-worker",
        "aggregator",
        "archiver",
    }
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "prom-test"
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        workload = rendered.workload(component)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        port_number(service_container(rendered, component), endpoint["port"])
        assert endpoint["path"] == "/metrics"
    (service_monitor,) = rendered.of_kind("ServiceMonitor")
    assert service_monitor["metadata"]["labels"]["release"] == "prom-test"
    (endpoint,) = service_monitor["spec"]["endpoints"]
    service = rendered.get("Service", name_of("api"))
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics/"  # the API's metrics app is mounted there
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= (
        service["metadata"]["labels"].items()
    )

    (rule,) = rendered.of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom-test"
    rules_file = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert rule["spec"]["groups"] == rules_file["groups"]

    (dashboard,) = [
        c for c in rendered.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = dashboard["data"].values()
    expected = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert json.loads(content) == expected


def test_default_monitor_label_is_kube_prometheus_stack() -> None:
    rendered = scenario("monitoring")
    for kind in ("PodMonitor", "ServiceMonitor", "PrometheusRule"):
        for doc in rendered.of_kind(kind):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"


# NOTES.txt ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "dev", "prod", "autoscaling-hpa", "autoscaling-keda"])
def test_notes_tell_how_to_open_the_dashboard_and_scale(name: str, tmp_path: Path) -> None:
    """NOTES.txt rendered by the same engine (as a ConfigMap of a copy of the chart)."""
    chart = tmp_path / "quax-stream"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "notes" -}}\n' + notes + "\n{{- end }}\n"
    )
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "notes" . | quote }}\n'
    )
    files, sets = SCENARIOS[name]
    result = helm(
        "template",
        RELEASE,
        str(chart),
        *("-n", NAMESPACE, "-s", "templates/notes.yaml"),
        *helm_args(files, sets),
    )
    assert result.returncode == 0, result.stderr
    text = yaml.safe_load(result.stdout)["data"]["notes"]
    if scenario(name).of_kind("Ingress"):
        assert "https://quax.example.org/" in text
    else:
        assert f"kubectl -n {NAMESPACE} port-forward svc/quax-api 8000:8000" in text
    assert f"helm test {RELEASE}" in text
    if "hpa" in name:
        assert "get hpa quax-fft-worker" in text
    elif "keda" in name or name == "prod":
        assert "get scaledobject quax-fft-worker" in text
    else:
        assert "scale deployment/quax-fft-worker --replicas=4" in text


@pytest.mark.parametrize(("name", "replication"), [("default", 1), ("prod", 3)])
def test_faust_changelogs_get_the_topics_replication(name: str, replication: int) -> None:
    # Faust creates the aggregator's table changelogs itself: they must be as durable as
    # the topics the chart creates, or a broker loss takes the run's state with it.
    rendered = scenario(name)
    for component in ("fft-worker", "aggregator"):
        cls, _, _ = SERVICES[component]
        settings = settings_from(cls, rendered.env(service_container(rendered, component)))
        assert settings.kafka.replication_factor == replication


# Kafka users (Strimzi) --------------------------------------------------------------------------

#: What each component does on Kafka (read the services): topic → operations, group → ...
NEEDED_ACLS = {
    "producer": {
        ("topic", "quax.raw", "literal"): {"Describe", "Write"},
        ("topic", "quax.progress", "literal"): {"Describe", "Read", "Write"},
    },
    "fft-worker": {
        ("topic", "quax.raw", "literal"): {"Describe", "Read"},
        ("topic", "quax.partials", "literal"): {"Describe", "Write"},
        ("topic", "quax.deadletter", "literal"): {"Describe", "Write"},
        ("group", "quax-fft-worker", "literal"): {"Describe", "Read"},
        ("topic", "quax-fft-worker", "prefix"): {
            "Create", "Describe", "DescribeConfigs", "Read", "Write",
        },
    },
    "aggregator": {
        ("topic", "quax.partials", "literal"): {"Describe", "Read", "Write"},
        ("topic", "quax.spectra", "literal"): {"Describe", "Write"},
        ("topic", "quax.runs", "literal"): {"Describe", "Write"},
        ("topic", "quax.deadletter", "literal"): {"Describe", "Write"},
        ("group", "quax-aggregator", "literal"): {"Describe", "Read"},
        ("topic", "quax-aggregator", "prefix"): {
            "Create", "Describe", "DescribeConfigs", "Read", "Write",
        },
        # UpstreamWatch: the workers' lag on quax.raw pauses file timeouts.
        ("topic", "quax.raw", "literal"): {"Describe"},
        ("group", "quax-fft-worker", "literal"): {"Describe"},
    },
    "api": {
        ("topic", "quax.spectra", "literal"): {"Describe", "Read"},
        ("topic", "quax.runs", "literal"): {"Describe", "Read"},
        ("topic", "quax.deadletter", "literal"): {"Describe", "Read"},
    },
    "archiver": {
        ("topic", "quax.spectra", "literal"): {"Describe", "Read"},
        ("topic", "quax.runs", "literal"): {"Describe", "Read"},
        ("topic", "quax.deadletter", "literal"): {"Describe", "Write"},
        # commits after each flush, for the group's lag
        ("group", "quax-archiver", "literal"): {"Describe", "Read"},
    },
}  # fmt: skip


def test_strimzi_mode_gives_each_component_its_own_user_with_exactly_its_acls() -> None:
    rendered = scenario("kafka-strimzi")
    (kafka,) = rendered.of_kind("Kafka")
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert "userOperator" in kafka["spec"]["entityOperator"]
    users = {u["metadata"]["name"]: u for u in rendered.of_kind("KafkaUser")}
    assert set(users) == {name_of(component) for component in NEEDED_ACLS}
    for component, needed in NEEDED_ACLS.items():
        spec = users[name_of(component)]["spec"]
        assert spec["authentication"] == {"type": "scram-sha-512"}
        granted = {
            (a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]): set(
                a["operations"]
            )
            for a in spec["authorization"]["acls"]
        }
        assert granted == needed, component
        assert len(spec["authorization"]["acls"]) == len(needed), "one rule per resource"

        # The component connects as that user, over TLS, with the Secrets mounted.
        workload = rendered.workload(component)
        for container in containers(workload):
            env = rendered.env(container)
            assert env["QUAX_KAFKA_SASL_USERNAME"] == name_of(component)
            assert env["QUAX_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/var/run/quax/kafka-user"] == "kafka-user"
            assert env["QUAX_KAFKA_SASL_PASSWORD_FILE"].startswith("/var/run/quax/kafka-user/")
            assert env["QUAX_KAFKA_SSL_CAFILE"].startswith("/var/run/quax/kafka-ca/")
        volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
        assert volumes["kafka-user"]["secret"]["secretName"] == name_of(component)
        assert volumes["kafka-ca"]["secret"]["secretName"] == "quax-cluster-ca-cert"


def test_strimzi_mode_without_authentication_is_the_plain_listener() -> None:
    files, sets = SCENARIOS["kafka-strimzi"]
    rendered = render(files, (*sets, "kafka.strimzi.authentication=none"))
    assert rendered.of_kind("KafkaUser") == []
    common = rendered.get("ConfigMap", name_of("common"))
    assert common["data"]["QUAX_KAFKA_BOOTSTRAP_SERVERS"] == (
        "quax-kafka-bootstrap.quax.svc.cluster.local:9092"
    )
    assert "QUAX_KAFKA_SECURITY_PROTOCOL" not in common["data"]


def test_keda_reads_the_lag_as_the_workers_user_over_tls() -> None:
    rendered = scenario("prod")
    (scaled,) = rendered.of_kind("ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert (trigger["metadata"]["tls"], trigger["metadata"]["sasl"]) == ("enable", "scram_sha512")
    (auth,) = rendered.of_kind("TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        "password": (name_of("fft-worker"), "password"),
        "ca": ("quax-cluster-ca-cert", "ca.crt"),
    }
    (username,) = auth["spec"]["env"]
    worker = service_container(rendered, "fft-worker")
    assert username["containerName"] == worker["name"]
    assert rendered.env(worker)[username["name"]] == name_of("fft-worker")


def test_the_api_reads_the_archivers_claim_read_only_when_asked() -> None:
    for name, reads in (("default", False), ("dev", True)):
        rendered = scenario(name)
        api = service_container(rendered, "api")
        env = settings_from(ApiSettings, rendered.env(api))
        volumes = {v["name"]: v for v in pod_spec(rendered.workload("api"))["volumes"]}
        if not reads:
            assert env.archive_directory is None
            assert "archive" not in volumes
            continue
        archiver = rendered.workload("archiver")
        (template,) = archiver["spec"]["volumeClaimTemplates"]
        claim = volumes["archive"]["persistentVolumeClaim"]
        assert claim == {
            "claimName": f"{template['metadata']['name']}-{archiver['metadata']['name']}-0",
            "readOnly": True,
        }
        (mount,) = [m for m in api["volumeMounts"] if m["name"] == "archive"]
        assert mount["readOnly"] is True
        written = settings_from(
            ArchiverSettings, rendered.env(service_container(rendered, "archiver"))
        )
        assert env.archive_directory == written.directory
        assert env.archive_directory.is_relative_to(mount["mountPath"])
