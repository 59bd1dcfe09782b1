"""The services' container images: each Dockerfile linted and checked against its service, and
the environment it installs built here, stage by stage, then run as the image's user.

There is no Docker engine on the project's machines: the slow tests carry out the Dockerfile's
own COPY (through .dockerignore) and uv/npm RUN steps in a temporary directory that stands in
for the image's filesystem, with the same environment variables, then run the entry point.
hadolint comes from tools/hadolint/install.sh.
"""

from __future__ import annotations

import json
import mmap
import os
import posixpath
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import typer.main

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("producer", "fft-worker", "aggregator", "api")

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
}

#: PATH of the python and node base images before any ENV of ours.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Shared libraries every Debian bookworm image has (libc6, libgcc-s1, libstdc++6 for apt,
#: zlib1g for dpkg): a wheel may link them; anything else must be bundled in the wheels.
BASE_LIBRARIES = {
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libz.so.1",
}
#: numba's TBB and OpenMP threading layers load only for parallel=True, which quaxspec does not
#: use; their missing libtbb/libgomp are not needed at run time.
OPTIONAL_EXTENSIONS = re.compile(r"numba/np/ufunc/(tbbpool|omppool)\.")

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
    assert "NUMBA_CACHE_DIR" in env, "numba would cache next to the read-only package"
    writable = [Path(env["NUMBA_CACHE_DIR"])]
    writable += [getattr(settings, f) for f in type(settings).model_fields if f.endswith("_dir")]
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


@dataclass
class Image:
    """A stand-in for a built image: its filesystem under ``root``, its runtime stage."""

    root: Path
    final: Stage
    as_user: list[str]

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def env(self, **overrides: str) -> dict[str, str]:
        """The runtime's variables, with the image's own paths moved under ``root``."""

        tops = {p.name for p in self.root.iterdir()}

        def move(value: str) -> str:
            return ":".join(
                str(self.host(p)) if p.startswith("/") and p.split("/")[1] in tops else p
                for p in value.split(":")
            )

        env = {name: move(value) for name, value in self.final.env().items()}
        env["HOME"] = str(self.host("/nonexistent"))  # the user's home: none
        env.update(overrides)
        return env

    def command(self, *args: str, **env: str) -> tuple[list[str], dict[str, str]]:
        """ENTRYPOINT and CMD (or ``args``), the entry point found on the image's PATH."""
        environment = self.env(**env)
        entrypoint = self.final.exec_form("ENTRYPOINT")
        found = shutil.which(entrypoint[0], path=environment["PATH"])
        assert found, f"{entrypoint[0]} is not on the image's PATH"
        assert Path(found).is_relative_to(self.root), f"{found} is not in the image"
        argv = [found, *entrypoint[1:], *(args or self.final.exec_form("CMD"))]
        return [*self.as_user, *argv], environment

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        argv, environment = self.command(*args, **env)
        return subprocess.run(
            argv, env=environment, capture_output=True, text=True, timeout=300, cwd=self.root
        )

    def python(self, code: str, *args: str) -> subprocess.CompletedProcess[str]:
        environment = self.env()
        python = shutil.which("python", path=environment["PATH"])
        assert python
        return subprocess.run(
            [*self.as_user, python, "-c", code, *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
        )


def _tool(name: str) -> str:
    local = ROOT / ".tools" / "bin" / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing (make setup)")
    return found


def _python(minor: str, as_user: list[str]) -> str:
    """A Python of the image's minor version that the image's user can run."""
    candidates = [
        f"{sys.base_prefix}/bin/python{minor}",
        f"/usr/bin/python{minor}",
        f"/usr/local/bin/python{minor}",
    ]
    for candidate in candidates:
        if Path(candidate).is_file():
            probe = subprocess.run([*as_user, candidate, "-c", "pass"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    pytest.fail(f"no Python {minor} that the image's user can run among {candidates}")


def _copy(image: Image, instruction: Instruction, workdir: str) -> None:
    flags, rest = instruction.flags_and_rest()
    *sources, destination = shlex.split(rest)
    target = image.host(posixpath.join(workdir, destination))
    for source in sources:
        origin = image.host(source) if "from" in flags else ROOT / source
        assert origin.exists(), f"COPY {source}: not found"
        if origin == target:
            continue
        if origin.is_dir():
            copied = 0
            for path in sorted(origin.rglob("*")):
                relative = path.relative_to(origin)
                if path.is_dir() or (
                    "from" not in flags and ignored(f"{posixpath.normpath(source)}/{relative}")
                ):
                    continue
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / relative)
                copied += 1
            assert copied, f"COPY {source}: nothing of it is in the build context"
        else:
            assert "from" in flags or not ignored(posixpath.normpath(source)), (
                f"COPY {source}: left out of the build context by .dockerignore"
            )
            into = target / origin.name if destination.endswith("/") else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if origin != into:
                shutil.copy2(origin, into)


def _build(service: str, root: Path) -> Image:
    """Carry out the Dockerfile under ``root``: build stages' COPY and uv/npm RUN steps, then
    the runtime's COPY; the runtime's RUN (user, volume directory) is stood in for."""
    file = dockerfile(service)
    uid, gid = user_ids(file.final)
    as_user = (
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        if os.geteuid() == 0
        else []
    )
    image = Image(root=root, final=file.final, as_user=as_user)
    minor = re.fullmatch(r"python:(\d+\.\d+)\.\d+.*", file.final.base)
    assert minor
    python = _python(minor[1], as_user)
    scratch = image.host("/tmp")
    scratch.mkdir()
    scratch.chmod(0o1777)
    for stage in file.stages:
        workdir = "/"
        for instruction in stage.instructions:
            if instruction.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, instruction.value)
                image.host(workdir).mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "COPY":
                flags, _ = instruction.flags_and_rest()
                if "/" in flags.get("from", "") and "astral-sh/uv" in flags["from"]:
                    continue  # the uv binary: the local one, of the same version
                _copy(image, instruction, workdir)
            elif instruction.keyword == "VOLUME":
                for volume in json.loads(instruction.value):
                    image.host(volume).mkdir(parents=True)
                    if as_user:
                        os.chown(image.host(volume), uid, gid)
            elif instruction.keyword == "RUN" and stage is not file.final:
                _, command = instruction.flags_and_rest()
                argv = shlex.split(command)
                assert argv[0] in {"uv", "npm"}, f"cannot stand in for RUN {command}"
                env = dict(os.environ)
                env.pop("VIRTUAL_ENV", None)
                env.update({n: v for n, v in stage.env().items() if n.startswith("UV_")})
                if "UV_PROJECT_ENVIRONMENT" in env:
                    env["UV_PROJECT_ENVIRONMENT"] = str(image.host(env["UV_PROJECT_ENVIRONMENT"]))
                env["UV_PYTHON"] = python
                env.pop("UV_LINK_MODE", None)  # copy only because of the cache mount
                result = subprocess.run(
                    [_tool(argv[0]), *argv[1:]],
                    cwd=image.host(workdir),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                assert result.returncode == 0, f"RUN {command}\n{result.stderr}"
    return image


@pytest.fixture(scope="module")
def images() -> Iterator[Callable[[str], Image]]:
    built: dict[str, Image] = {}
    roots: list[Path] = []

    def get(service: str) -> Image:
        if service not in built:
            # Not pytest's tmp_path: the image's user must be able to reach it.
            root = Path(tempfile.mkdtemp(prefix=f"quax-image-{service}-"))
            root.chmod(0o755)
            roots.append(root)
            built[service] = _build(service, root)
        return built[service]

    yield get
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_its_console_script(service: str, images: Callable[[str], Image]) -> None:
    image = images(service)
    result = image.run("--help")
    assert result.returncode == 0, result.stderr
    command = image.final.exec_form("CMD")
    assert command[0] in result.stdout
    result = image.run(*command, "--help")
    assert result.returncode == 0, result.stderr


def _needed(path: Path) -> list[str]:
    """The DT_NEEDED entries of a 64-bit little-endian ELF file; [] for anything else."""
    if path.stat().st_size < 64:
        return []
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:6] != b"\x7fELF\x02\x01":
            return []
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [
            struct.unpack_from("<IIQQQQIIQQ", data, shoff + n * shentsize) for n in range(shnum)
        ]
        names = []
        for _, kind, _, _, offset, size, link, *_ in sections:
            if kind != 6:  # SHT_DYNAMIC
                continue
            strings = sections[link][4]
            for n in range(size // 16):
                tag, value = struct.unpack_from("<qQ", data, offset + 16 * n)
                if tag == 1:  # DT_NEEDED
                    end = data.find(b"\0", strings + value)
                    names.append(data[strings + value : end].decode())
        return names


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
def test_image_needs_no_system_library(service: str, images: Callable[[str], Image]) -> None:
    """Every shared library an extension links is in a wheel or in the Debian base: the runtime
    stage installs no apt package (pyFFTW, numpy and scipy bundle FFTW and OpenBLAS)."""
    image = images(service)
    venv = image.host(dockerfile(service).stage("builder").env()["UV_PROJECT_ENVIRONMENT"])
    files = [p for p in venv.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    bundled = {p.name for p in files}
    missing = {
        f"{p.relative_to(venv)}: {name}"
        for p in files
        if not OPTIONAL_EXTENSIONS.search(p.as_posix())
        for name in _needed(p)
        if name not in BASE_LIBRARIES and name not in bundled
    }
    assert files
    assert not missing, sorted(missing)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_api_image_serves_the_dashboard(images: Callable[[str], Image]) -> None:
    image = images("api")
    found = image.python("from quax_api.main import STATIC; print(STATIC)")
    assert found.returncode == 0, found.stderr
    static = Path(found.stdout.strip())
    vendor = {"uPlot.iife.min.js", "uPlot.min.css"}
    assert (static / "vendor").is_dir(), f"no {static}/vendor in the image"
    assert vendor <= {p.name for p in (static / "vendor").iterdir()}
    port = _free_port()
    # A closed port as the broker: the API serves while it retries Kafka.
    argv, env = image.command(
        QUAX_API_HOST="127.0.0.1",
        QUAX_API_PORT=str(port),
        QUAX_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_free_port()}",
    )
    log = image.host("/tmp/api.log")
    with log.open("w") as output:
        process = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    index = page.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        for name in sorted(vendor):
            assert f"/static/vendor/{name}" in index
            url = f"http://127.0.0.1:{port}/static/vendor/{name}"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.read() == (static / "vendor" / name).read_bytes()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_producer_image_writes_daq_files(images: Callable[[str], Image]) -> None:
    image = images("producer")
    out = image.host("/tmp/daq")
    result = image.run("generate", str(out), "--files", "1", "--samples", "6144")
    assert result.returncode == 0, result.stderr
    assert {p.name: p.stat().st_size for p in out.iterdir()} == {
        "duck_i_00000.dat": 6144 * 4,
        "duck_q_00000.dat": 6144 * 4,
    }


@pytest.mark.slow
def test_fft_worker_image_runs_the_kernel(images: Callable[[str], Image]) -> None:
    """The FFT kernel (pyFFTW and numba) in the image's environment, as its user: numba's
    cache goes to NUMBA_CACHE_DIR, the installed package being read-only."""
    from quaxspec.daq import write_pair
    from quaxspec.synthetic import SyntheticDaq

    image = images("fft-worker")
    data = image.host("/tmp/run")
    data.mkdir()
    daq = SyntheticDaq(seed=1, n_samples=8 * 3072)
    for number in range(2):
        write_pair(data, number, *daq.samples(number))
    saved = image.host("/tmp/run.npz")
    result = image.run("offline", str(data), "--save", str(saved))
    assert result.returncode == 0, result.stderr
    assert saved.is_file()
    cache_dir = Path(image.env()["NUMBA_CACHE_DIR"])
    assert any(p.suffix == ".nbi" for p in cache_dir.rglob("*")), "numba cached nothing"


@pytest.mark.slow
def test_aggregator_image_writes_its_volume(images: Callable[[str], Image]) -> None:
    """The aggregator's data directory is a volume its user can write, with RocksDB in it."""
    image = images("aggregator")
    data_dir = image.env()["QUAX_AGGREGATOR_DATA_DIR"]
    code = (
        "import sys, rocksdict\n"
        "db = rocksdict.Rdict(sys.argv[1])\n"
        "db['run'] = b'42'\n"
        "db.close()\n"
        "print(rocksdict.Rdict(sys.argv[1])['run'])\n"
    )
    result = image.python(code, f"{data_dir}/probe")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "b'42'"
