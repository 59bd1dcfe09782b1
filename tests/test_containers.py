"""The services' Dockerfiles, read: each one linted (hadolint, from tools/hadolint/install.sh)
and checked against its service, and the build context that .dockerignore leaves. The images
themselves are built and run by tests/test_images.py (podman) and tests/test_cluster.py.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import typer.main

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("producer", "fft-worker", "aggregator", "api", "archiver")

#: The two uv steps of every builder stage: third-party dependencies alone (only uv.lock and the
#: pyproject files copied), then the workspace packages as wheels. The Dockerfiles must run
#: exactly these, and the slow tests run them.
UV_DEPENDENCIES = "uv sync --frozen --no-dev --no-editable --no-install-workspace --package {}"
UV_PROJECT = "uv sync --frozen --no-dev --no-editable --package {}"

#: What each service listens on in its image, and its settings class.
PORT_SETTING = {
    "producer": ("quax_producer.settings:ProducerSettings", "metrics_port"),
    "fft-worker": ("quax_fft_worker.settings:FftWorkerSettings", "metrics_port"),
    "aggregator": ("quax_aggregator.settings:AggregatorSettings", "metrics_port"),
    "api": ("quax_api.settings:ApiSettings", "port"),
    "archiver": ("quax_archiver.settings:ArchiverSettings", "metrics_port"),
}

#: PATH of the python and node base images before any ENV of ours.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: What a runtime stage must not install.
BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cargo|rustc|pip3?|uv|uvx|python3?-dev)\b"
)


# --- a minimal Dockerfile reader ---------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """The leading ``--name=value`` flags and what follows them."""
        flags: dict[str, str] = {}
        rest = self.value
        while match := re.match(r"--([a-z-]+)=(\S+)\s+", rest):
            flags[match[1]] = match[2]
            rest = rest[match.end() :]
        return flags, " ".join(rest.split())


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def exec_form(self, keyword: str) -> list[str]:
        (instruction,) = self.all(keyword)
        value = json.loads(instruction.value)
        assert isinstance(value, list), f"{keyword} is not in exec form"
        return value

    def env(self) -> dict[str, str]:
        """Every ENV of the stage, ``$NAME`` expanded, over the base image's PATH."""
        env = {"PATH": BASE_PATH}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.value):
                name, sep, value = token.partition("=")
                assert sep, f"ENV {token!r}: use the NAME=value form"
                env[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], ""), value)
        return env

    def uv_runs(self) -> list[str]:
        return [i.flags_and_rest()[1] for i in self.all("RUN") if "uv " in i.value]


@dataclass
class Dockerfile:
    path: Path
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        (stage,) = [s for s in self.stages if s.name == name]
        return stage


@cache
def dockerfile(service: str) -> Dockerfile:
    path = ROOT / "services" / service / "Dockerfile"
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: the last instruction is continued past the end"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{path}: {keyword} before FROM"
            stages[-1].instructions.append(Instruction(keyword, value))
    return Dockerfile(path, stages)


def pyproject(service: str) -> dict[str, Any]:
    with (ROOT / "services" / service / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def console_script(service: str) -> tuple[str, str]:
    scripts = pyproject(service)["project"]["scripts"]
    assert len(scripts) == 1, f"{service} has {len(scripts)} console scripts, expected one"
    ((name, target),) = scripts.items()
    return name, target


def user_ids(stage: Stage) -> tuple[int, int]:
    user = stage.all("USER")[-1].value
    match = re.fullmatch(r"(\d+):(\d+)", user)
    assert match, f"USER {user!r} is not numeric uid:gid"
    return int(match[1]), int(match[2])


# --- .dockerignore, as Docker reads it ----------------------------------------------------------


@cache
def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern):
            if token == "**/":
                regex += "(?:.*/)?"
            elif token == "**":
                regex += ".*"
            elif token == "*":
                regex += "[^/]*"
            elif token == "?":
                regex += "[^/]"
            elif token.startswith("["):
                regex += token
            else:
                regex += re.escape(token)
        patterns.append((exception, re.compile(regex)))
    return patterns


def ignored(relative: str) -> bool:
    """Whether Docker leaves this context path out: the last pattern matching the path, or
    one of its parent directories, decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for exception, regex in ignore_patterns():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not exception
    return verdict


# --- static checks ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hadolint() -> Path:
    found = ROOT / ".tools" / "hadolint" / "bin" / "hadolint"
    if not found.is_file():
        on_path = shutil.which("hadolint")
        if on_path is None:
            pytest.fail("hadolint is missing: run tools/hadolint/install.sh")
        found = Path(on_path)
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("Haskell Dockerfile Linter"), version
    return found


def test_hadolint_reports_a_bad_dockerfile(hadolint: Path) -> None:
    bad = "FROM python:latest\nRUN apt-get install gcc\n"
    result = subprocess.run(
        [hadolint, "--no-color", "-"], input=bad, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout, result.stdout
    assert "DL3008" in result.stdout, result.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes(service: str, hadolint: Path) -> None:
    result = subprocess.run(
        [hadolint, "--no-color", f"services/{service}/Dockerfile"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_is_the_console_script(service: str) -> None:
    name, target = console_script(service)
    final = dockerfile(service).final
    assert final.exec_form("ENTRYPOINT") == [name]
    module, _, attribute = target.partition(":")
    commands = typer.main.get_command(getattr(import_module(module), attribute)).commands
    command = final.exec_form("CMD")
    assert command[0] in commands, f"CMD {command} is not a command of {name}"


@pytest.mark.parametrize("service", SERVICES)
def test_builder_and_runtime_share_one_pinned_python(service: str) -> None:
    file = dockerfile(service)
    builder, final = file.stage("builder"), file.final
    assert builder.base == final.base
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.\d+-slim-bookworm", final.base)
    assert match, f"{final.base} is not pinned to a patch release"
    requires = pyproject(service)["project"]["requires-python"]
    assert f">={match[1]}.{match[2]}" in requires.replace(" ", "").split(",")


@pytest.mark.parametrize("service", SERVICES)
def test_every_base_image_is_pinned(service: str) -> None:
    """Base images and images copied from are pinned to a patch release."""
    for stage in dockerfile(service).stages:
        assert re.search(r":\d+\.\d+\.\d+(-[\w.-]+)?$", stage.base), stage.base
        for copy in stage.all("COPY"):
            image = copy.flags_and_rest()[0].get("from", "")
            assert ":" not in image or re.search(r":\d+\.\d+\.\d+$", image), image


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_runs_as_a_numeric_user(service: str) -> None:
    uid, gid = user_ids(dockerfile(service).final)
    assert uid > 0
    assert gid > 0


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_has_no_uv_nor_build_tools(service: str) -> None:
    file = dockerfile(service)
    final = file.final
    stage_names = {s.name for s in file.stages if s.name}
    for copy in final.all("COPY"):
        flags, rest = copy.flags_and_rest()
        assert flags.get("from", "") in stage_names | {""}, f"runtime copies an image: {copy}"
        assert not re.search(r"(^|/)uvx?(\s|$)", rest), f"runtime copies uv: {copy}"
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run.value), f"runtime installs build tools: {run}"
    assert not [name for name in final.env() if name.startswith("UV_")]


@pytest.mark.parametrize("service", SERVICES)
def test_builder_runs_the_tested_uv_steps(service: str) -> None:
    file = dockerfile(service)
    builder = file.stage("builder")
    package = pyproject(service)["project"]["name"]
    assert builder.uv_runs() == [UV_DEPENDENCIES.format(package), UV_PROJECT.format(package)]
    for run in builder.all("RUN"):
        flags, _ = run.flags_and_rest()
        assert flags.get("mount", "").startswith("type=cache,"), f"no cache mount: {run}"
    # The dependency layer sees nothing but the lock and the pyproject files.
    before = builder.instructions[: builder.instructions.index(builder.all("RUN")[0])]
    for copy in [i for i in before if i.keyword == "COPY" and "from" not in i.flags_and_rest()[0]]:
        sources = copy.flags_and_rest()[1].split()[:-1]
        assert all(Path(s).name in {"uv.lock", "pyproject.toml"} for s in sources), copy
    env = builder.env()
    assert env["UV_COMPILE_BYTECODE"] == "1"
    # The uv image is the version the Makefile installs for the local tests.
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^UV_VERSION\s*:=\s*(\S+)", makefile, re.MULTILINE)
    assert version
    (uv_copy,) = [c for c in builder.all("COPY") if "astral-sh/uv" in c.value]
    assert uv_copy.flags_and_rest()[0]["from"] == f"ghcr.io/astral-sh/uv:{version[1]}"
    # The scripts' shebangs name the virtualenv's path: the runtime keeps it.
    venv = env["UV_PROJECT_ENVIRONMENT"]
    copies = [c.flags_and_rest() for c in file.final.all("COPY")]
    assert ({"from": "builder"}, f"{venv} {venv}") in copies
    assert file.final.env()["PATH"].split(":")[0] == f"{venv}/bin"


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's variables, read by the service's own settings: it listens on the exposed
    port, and whatever it writes goes to /tmp or to a declared volume."""
    final = dockerfile(service).final
    for name in [n for n in os.environ if n.startswith("QUAX_")]:
        monkeypatch.delenv(name)
    env = final.env()
    for name, value in env.items():
        if name.startswith("QUAX_"):
            monkeypatch.setenv(name, value)
    target, port_field = PORT_SETTING[service]
    module, _, class_name = target.partition(":")
    settings = getattr(import_module(module), class_name)()
    exposed = {int(port) for e in final.all("EXPOSE") for port in e.value.split()}
    assert exposed == {getattr(settings, port_field)}
    if service == "api":
        assert settings.host == "0.0.0.0"
    volumes = [v for e in final.all("VOLUME") for v in json.loads(e.value)]
    writable = [getattr(settings, f) for f in type(settings).model_fields if f.endswith("_dir")]
    if service == "archiver":
        writable.append(settings.directory)
    if service == "fft-worker":  # the only image with the kernel (quaxspec[kernel])
        assert "NUMBA_CACHE_DIR" in env, "numba would cache next to the read-only package"
        writable.append(Path(env["NUMBA_CACHE_DIR"]))
    else:
        assert "NUMBA_CACHE_DIR" not in env, f"{service} has no numba to cache for"
    for path in writable:
        assert path.is_relative_to("/tmp") or any(path.is_relative_to(v) for v in volumes), path
    version = pyproject(service)["project"]["version"]
    assert f'org.opencontainers.image.version="{version}"' in " ".join(
        label.value for label in final.all("LABEL")
    )


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("uv.lock", False),
        ("pyproject.toml", False),
        ("libs/quaxspec/pyproject.toml", False),
        ("libs/quaxspec/src/quaxspec/spectrum.py", False),
        ("services/api/src/quax_api/static/app.js", False),
        ("services/api/dashboard/package-lock.json", False),
        ("services/api/dashboard/node_modules/uplot/dist/uPlot.iife.min.js", True),
        ("services/api/src/quax_api/static/vendor/uPlot.iife.min.js", True),
        ("services/api/src/quax_api/__pycache__/main.cpython-311.pyc", True),
        ("libs/quaxspec/tests/test_spectrum.py", True),
        (".venv/bin/python", True),
        (".tools/bin/uv", True),
        (".kafka/server.properties", True),
        (".git/HEAD", True),
        ("data/demo/duck_i_00000.dat", True),
        ("tools/kafka/lib/kafka-clients.jar", True),
        ("bench/results/kernel.json", True),
        ("docs/dashboard.png", True),
    ],
)
def test_build_context(path: str, left_out: bool) -> None:
    assert ignored(path) is left_out


# --- the images' environments, built here -------------------------------------------------------
