"""Monitoring: the Prometheus rules and the Grafana dashboard the chart ships.

promtool checks the rule file and runs its unit tests (tests/monitoring/); the dashboard's
structure is checked here. The live test runs the pipeline with a real Prometheus
scraping every service and evaluating the rules: every dashboard query and every
recording rule must return data, the alerts that the scenario provokes (dead letters,
a strong line) must be active, and the others must stay quiet while their signals are
measured.

promtool and prometheus come from Debian's package (tools/prometheus/install.sh): when
they are missing these tests fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from localkafka import LocalKafka, free_port
from pipeline import Pipeline

from quax_aggregator.settings import AggregatorSettings
from quax_api.settings import ApiSettings
from quax_archiver.settings import ArchiverSettings
from quaxspec.topics import PARTIALS, RAW, SPECTRA

ROOT = Path(__file__).resolve().parents[1]
CHART_FILES = ROOT / "helm" / "quax-stream" / "files"
RULES = CHART_FILES / "prometheus-rules.yaml"
DASHBOARD = CHART_FILES / "grafana-dashboard.json"
FIXTURES = sorted((Path(__file__).parent / "monitoring").glob("*.yaml"))
INSTALL = "tools/prometheus/install.sh"
DEMO_CONFIG = ROOT / "tools" / "prometheus" / "demo.yml"

#: Grafana's interval macros, as a dashboard at this scrape interval would resolve them.
MACROS = {"__rate_interval": "15s", "__interval": "5s", "__range": "60s"}

#: Alerts that the live scenario provokes; every other alert must stay quiet in it.
LIVE_ACTIVE = {"QuaxDeadLetters", "QuaxAxionCandidate"}
LIVE_QUIET = {
    "QuaxNoSpectra",
    "QuaxConsumerLagHigh",
    "QuaxConsumerLagGrowing",
    "QuaxRecordsLost",
    "QuaxLateChunksDropped",
    "QuaxBadDaqPairs",
    "QuaxRadiometerOutOfBand",
    "QuaxArchiveBehind",
    "QuaxArchiveRecordsLost",
}


def tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: run {INSTALL} (Debian's prometheus package)")
    return found


def rule_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES.read_text())["groups"]


def recording_rules() -> dict[str, str]:
    return {r["record"]: r["expr"] for g in rule_groups() for r in g["rules"] if "record" in r}


def alert_rules() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_groups() for r in g["rules"] if "alert" in r}


def signals(expr: str) -> list[str]:
    """The recording rules an alert's expression compares."""
    return sorted(name for name in recording_rules() if re.search(rf"{re.escape(name)}\b", expr))


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], t) for panel in dashboard()["panels"] for t in panel.get("targets", [])
    ]


def resolve(expr: str, variables: dict[str, str]) -> str:
    """Substitute Grafana's macros and the dashboard's variables ($x, ${x}, ${x:fmt}, [[x]])."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name.isdigit():  # a regex back-reference such as label_replace's $1
            return match.group(0)
        if name not in variables:
            raise AssertionError(f"unknown variable ${name} in {expr!r}")
        return variables[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", value, expr)


def variables() -> dict[str, str]:
    """Every variable at its "All" value (the dashboard's default), and the macros."""
    values = dict(MACROS)
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        assert variable.get("includeAll"), variable["name"]
        assert variable.get("allValue"), variable["name"]
        values[variable["name"]] = variable["allValue"]
    return values


# ----------------------------------------------------------------------------- rules


def test_rule_file_passes_promtool_check():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    assert FIXTURES, "no promtool unit tests in tests/monitoring"
    result = subprocess.run(
        [tool("promtool"), "test", "rules", *map(str, FIXTURES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_quiet():
    firing: set[str] = set()
    quiet: set[str] = set()
    for fixture in FIXTURES:
        for case in yaml.safe_load(fixture.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(alert_rules())
    assert alerts - firing == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen quiet"


def test_alerts_have_severity_units_and_a_classification_for_the_live_test():
    alerts = alert_rules()
    assert set(alerts) == LIVE_ACTIVE | LIVE_QUIET
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_alerts_compare_recording_rules_and_match_no_deployment_label():
    for name, rule in alert_rules().items():
        assert signals(rule["expr"]), f"{name} compares no recording rule"
    for group in rule_groups():
        for rule in group["rules"]:
            # Label matchers are {…} not followed by a range or an offset: none may name the
            # labels a deployment adds (job, namespace, pod, instance, service).
            for matchers in re.findall(r"\{([^{}]*)\}", rule["expr"]):
                assert not re.search(r"\b(job|namespace|pod|instance|service)\s*[=!]", matchers), (
                    rule.get("alert") or rule.get("record")
                )


def test_demo_scrape_config_is_valid_and_matches_the_demo_ports():
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(DEMO_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    procfile = (ROOT / "Procfile").read_text()
    expected = {
        "producer": {int(p) for p in re.findall(r"--metrics-port (\d+)", procfile)},
        "fft-worker": {int(p) for p in re.findall(r"QUAX_FFT_WORKER_METRICS_PORT=(\d+)", procfile)},
        "aggregator": {AggregatorSettings.model_fields["metrics_port"].default},
        "archiver": {ArchiverSettings.model_fields["metrics_port"].default},
        "api": {ApiSettings.model_fields["port"].default},
    }
    assert len(expected["fft-worker"]) == procfile.count("quax-fft-worker worker")
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    found = {
        job["job_name"]: {
            int(target.rsplit(":", 1)[1])
            for static in job["static_configs"]
            for target in static["targets"]
        }
        for job in config["scrape_configs"]
    }
    assert found == expected


# ------------------------------------------------------------------------- dashboard


def test_dashboard_has_a_datasource_variable_and_no_export_sections():
    board = dashboard()
    assert "__inputs" not in board
    assert "__requires" not in board
    assert (board["uid"], board["title"], board["refresh"]) == ("quax-stream", "quax-stream", "10s")
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36
    sources = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert len(sources) == 1
    assert (sources[0]["type"], sources[0]["query"]) == ("datasource", "prometheus")
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}", variable["name"]


def test_every_dashboard_panel_queries_the_datasource_variable():
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in board["panels"]:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title}: no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", title
            assert target["expr"].strip(), f"{title}: empty expr"
    text = DASHBOARD.read_text()
    assert "DS_PROMETHEUS" not in text, "an exported datasource placeholder"


def test_every_dashboard_query_parses(tmp_path):
    # promtool parses expressions of recording rules: check every resolved query that way.
    values = variables()
    rules = [
        {"record": f"dashboard:query_{n}", "expr": resolve(t["expr"], values)}
        for n, (_, t) in enumerate(dashboard_targets())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------- live Prometheus

N_FFT = 3072
SAMPLES = N_FFT * 300 + 1000
LINE_HZ = 2.0e5
# Matched-filter significance Z ≈ 0.236·s·√N (docs/physics.md): with s = 0.4 and 300
# slices per file, Z passes the 5 σ alert level after ≈ 10 files (5 s at 0.5 s per pair)
# and is ≈ 9 σ after 30 and ≈ 13 σ after 60, when the line adds only ≈ 2–4 % to the
# radiometer ratio (the ratio grows as √(1 + Z²/2400) over 3072 bins).
LINE_STRENGTH = "0.4"
SECONDS_PER_PAIR = "0.5"


class Prometheus:
    """A Prometheus server of Debian's package, in its own folder and on its own port."""

    def __init__(self, root: Path, targets: dict[str, list[str]], *, metrics_paths: dict[str, str]):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": metrics_paths.get(job, "/metrics"),
                    "static_configs": [{"targets": addresses}],
                }
                for job, addresses in targets.items()
            ],
        }
        self.config = root / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = root / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"prometheus not ready:\n{self.log()}"
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[Any]:
        """The instant result of ``expr`` now: its samples (a scalar counts as one)."""
        data = self.api("query", query=expr)
        return [data["result"]] if data["resultType"] in {"scalar", "string"} else data["result"]

    def targets_down(self) -> list[str]:
        active = self.api("targets", state="active")["activeTargets"]
        return [
            f"{t['labels']['job']} {t['scrapeUrl']}: {t['lastError']}"
            for t in active
            if t["health"] != "up"
        ]

    def active_alerts(self) -> dict[str, str]:
        """Alert name → state (pending or firing) of the alerts active now."""
        states: dict[str, str] = {}
        for alert in self.api("alerts")["alerts"]:
            name = alert["labels"]["alertname"]
            if states.get(name) != "firing":
                states[name] = alert["state"]
        return states


@pytest.fixture
def live_pipeline(kafka: LocalKafka, tmp_path: Path) -> Iterator[tuple[Pipeline, dict[str, int]]]:
    """Two FFT workers, the aggregator, the API and the archiver, each serving its metrics on a
    free port."""
    names = ("fft-worker-1", "fft-worker-2", "aggregator", "api", "archiver")
    ports = {name: free_port() for name in names}
    pipe = Pipeline(kafka, tmp_path / "pipeline")
    try:
        pipe.start_aggregator(QUAX_AGGREGATOR_METRICS_PORT=str(ports["aggregator"]))
        for name in ("fft-worker-1", "fft-worker-2"):
            pipe.start_worker(name, QUAX_FFT_WORKER_METRICS_PORT=str(ports[name]))
        pipe.start_api(port=ports["api"])
        pipe.start_archiver(QUAX_ARCHIVER_METRICS_PORT=str(ports["archiver"]))
        yield pipe, ports
    finally:
        pipe.close()


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Start Prometheus servers for a test; every one is stopped at its end."""
    servers: list[Prometheus] = []

    def start(targets: dict[str, list[str]], *, metrics_paths: dict[str, str]) -> Prometheus:
        server = Prometheus(
            tmp_path / f"prometheus-{len(servers)}", targets, metrics_paths=metrics_paths
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


async def _send_garbage(pipe: Pipeline) -> None:
    """Undecodable records into the topics of the FFT workers, the aggregator and the API."""
    producer = AIOKafkaProducer(bootstrap_servers=pipe.kafka.bootstrap)
    await producer.start()
    try:
        for spec in (RAW, PARTIALS, SPECTRA):
            await producer.send_and_wait(pipe.prefix + spec.name, b"not a message", key=b"?")
    finally:
        await producer.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_live_prometheus_sees_every_panel_and_rule_and_the_expected_alerts(
    live_pipeline, start_prometheus
):
    pipe, ports = live_pipeline
    ports["producer"] = free_port()
    pipe.start(
        "producer",
        "quax-producer",
        "run",
        *("--source", "synthetic", "--run-id", "live-monitoring", "--seed", "11"),
        *("--files", "1000", "--samples-per-file", str(SAMPLES)),
        *("--seconds-per-pair", SECONDS_PER_PAIR, "--line-strength", LINE_STRENGTH),
        *("--line-frequency-hz", str(LINE_HZ), "--metrics-port", str(ports["producer"])),
    )
    asyncio.run(_send_garbage(pipe))

    local = "127.0.0.1:{}".format
    prometheus = start_prometheus(
        {
            "producer": [local(ports["producer"])],
            "fft-worker": [local(ports["fft-worker-1"]), local(ports["fft-worker-2"])],
            "aggregator": [local(ports["aggregator"])],
            "api": [local(ports["api"])],
            "archiver": [local(ports["archiver"])],
        },
        metrics_paths={"api": "/metrics/"},
    )

    deadline = time.monotonic() + 60
    while down := prometheus.targets_down():
        assert time.monotonic() < deadline, f"targets not up: {down}\n{pipe.logs()}"
        time.sleep(1)

    values = variables()
    wanted: dict[str, str] = {}  # query → what it is, each must return data at least once
    for title, target in dashboard_targets():
        wanted[resolve(target["expr"], values)] = f"panel {title!r}"
    for record in recording_rules():
        wanted[record] = "recording rule"
    alerts = alert_rules()
    for name in LIVE_ACTIVE:
        wanted[alerts[name]["expr"]] = f"alert {name} (must hold)"

    seen: set[str] = set()
    states: dict[str, str] = {}
    deadline = time.monotonic() + 150
    while True:
        for expr in set(wanted) - seen:
            if prometheus.query(expr):
                seen.add(expr)
        for name, state in prometheus.active_alerts().items():
            assert not (name in LIVE_QUIET and state == "firing"), f"{name} fired"
            if states.get(name) != "firing":
                states[name] = state
        if seen == set(wanted) and set(states) >= LIVE_ACTIVE:
            break
        if time.monotonic() > deadline:
            missing = "\n".join(f"  {wanted[e]}: {e}" for e in sorted(set(wanted) - seen))
            raise AssertionError(
                f"no data for:\n{missing}\nactive alerts: {states}\n"
                f"prometheus:\n{prometheus.log()}\n{pipe.logs()}"
            )
        time.sleep(2)

    # The alerts this healthy run must not raise: each one's signals are there, its
    # condition does not hold, and Prometheus does not hold it pending.
    loud: list[str] = []
    for name in sorted(LIVE_QUIET):
        for record in signals(alerts[name]["expr"]):
            assert prometheus.query(record), f"{name}: no data for its signal {record}"
        if result := prometheus.query(alerts[name]["expr"]):
            loud.append(f"{name}: {result}")
    active = prometheus.active_alerts()
    loud += [f"{name} is {state}" for name, state in active.items() if name in LIVE_QUIET]
    assert not loud, "\n".join(loud)
    broken = [
        f"{rule['name']}: {rule.get('lastError')}"
        for group in prometheus.api("rules")["groups"]
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert not broken, "rules failing to evaluate:\n" + "\n".join(broken)
    assert active.keys() >= LIVE_ACTIVE, active
    (workers,) = prometheus.query("count(quax_fft_chunks_total)")
    assert workers["value"][1] == "2"
    # The line is where it was injected: the best candidate's run is the producer's.
    (best,) = prometheus.query("run_id:quax_aggregator_run_best_sigma:max_live")
    assert best["metric"]["run_id"] == "live-monitoring"
    assert float(best["value"][1]) >= 5
