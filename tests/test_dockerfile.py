"""The Dockerfile follows the image rules (test_e2e.py builds it, with buildah, and runs it on a node).

Each rule is a function returning the problems it finds, checked twice: the real Dockerfile must
have none, and a deliberately bad Dockerfile must trip every rule (so no check passes vacuously).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"

COMPILERS = ("gcc", "g++", "clang", "build-essential", "cmake", "make", "cc", "rustc", "cargo", "gfortran")
SECRET_WORDS = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE)


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comment lines, as Docker's parser does."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = _substitute(parts[0], global_args)
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
            stages.append(Stage(image=image, name=name))
        elif keyword == "ARG" and not stages:
            key, _, default = rest.partition("=")
            global_args[key] = default.strip('"')
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, rest))
    return Dockerfile(global_args, stages)


# --- the rules ---------------------------------------------------------------------------------


def check_multi_stage(df: Dockerfile) -> list[str]:
    problems = []
    if len(df.stages) < 2:
        problems.append(f"{len(df.stages)} stage(s); want a builder and a final stage")
    builders = {s.name for s in df.stages[:-1] if s.name}
    copies = [i.args for i in df.final.all("COPY") if i.args.startswith("--from=")]
    if not any(c.split()[0].removeprefix("--from=") in builders for c in copies):
        problems.append("the final stage copies nothing from a named builder stage")
    return problems


def check_pinned_bases(df: Dockerfile) -> list[str]:
    problems = []
    for stage in df.stages:
        if stage.image in {s.name for s in df.stages if s.name}:
            continue
        _name, _, tag = (
            stage.image.rpartition(":") if ":" in stage.image.split("/")[-1] else (stage.image, "", "")
        )
        if "@sha256:" in stage.image:
            continue
        if not tag or tag == "latest" or "$" in stage.image:
            problems.append(f"base image {stage.image!r} is not pinned to a tag")
        elif not re.search(r"\d+\.\d+", tag):
            problems.append(f"base image {stage.image!r} has no version in its tag")
    if not re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", df.final.image):
        problems.append(f"final stage is {df.final.image!r}, want python:3.11-slim")
    return problems


def check_final_user(df: Dockerfile) -> list[str]:
    users = df.final.all("USER")
    if not users:
        return ["the final stage sets no USER (it would run as root)"]
    user = users[-1].args.strip()
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    if not match:
        return [f"USER {user!r} is not numeric (runAsNonRoot cannot verify a name)"]
    if int(match.group(1)) == 0 or (match.group(2) is not None and int(match.group(2)) == 0):
        return [f"USER {user!r} is root"]
    return []


def check_no_compilers_in_final(df: Dockerfile) -> list[str]:
    problems = []
    for run in df.final.all("RUN"):
        for install in re.findall(
            r"(?:apt-get|apt|apk|yum|dnf|microdnf)\s+(?:-\S+\s+)*(?:install|add)\s+([^;&|]*)", run.args
        ):
            packages = {p for p in install.split() if not p.startswith("-")}
            found = sorted(packages & set(COMPILERS))
            if found:
                problems.append(f"final stage installs build tools: {', '.join(found)}")
    return problems


def check_no_remote_add(df: Dockerfile) -> list[str]:
    return [f"ADD {i.args}" for s in df.stages for i in s.all("ADD") if re.search(r"(^|\s)https?://", i.args)]


def check_no_secret_env(df: Dockerfile) -> list[str]:
    problems = []
    for stage in df.stages:
        for inst in stage.all("ENV") + stage.all("ARG"):
            for key in re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)", inst.args):
                if SECRET_WORDS.search(key):
                    problems.append(f"{inst.keyword} {key} looks like a secret baked into the image")
    return problems


def check_entrypoint(df: Dockerfile) -> list[str]:
    entry, cmd = df.final.all("ENTRYPOINT"), df.final.all("CMD")
    problems = []
    if not entry or entry[-1].args.replace(" ", "") != '["falco-reporter"]':
        problems.append(
            f'ENTRYPOINT is {entry[-1].args if entry else None!r}, want ["falco-reporter"] (exec form)'
        )
    if not cmd or cmd[-1].args.replace(" ", "") != '["run"]':
        problems.append(f'CMD is {cmd[-1].args if cmd else None!r}, want ["run"]')
    return problems


def check_extras_arg(df: Dockerfile) -> list[str]:
    builder = df.stages[0]
    if not any(i.args.split("=")[0] == "EXTRAS" for i in builder.all("ARG")):
        return ["the builder stage declares no ARG EXTRAS"]
    installs = [i.args for i in builder.all("RUN") if "pip install" in i.args and "EXTRAS" in i.args]
    if not installs:
        return ["ARG EXTRAS is not used by a pip install in the builder"]
    return []


RULES = [
    check_multi_stage,
    check_pinned_bases,
    check_final_user,
    check_no_compilers_in_final,
    check_no_remote_add,
    check_no_secret_env,
    check_entrypoint,
    check_extras_arg,
]

BAD_DOCKERFILE = """\
FROM python:latest
ARG OPENAI_API_KEY=sk-123
ENV FALCO_REPORTER_TOKEN=abc
ADD https://example.com/tool.tar.gz /opt/
RUN apt-get update && apt-get install -y --no-install-recommends gcc build-essential
RUN pip install falco-reporter
USER nonroot
ENTRYPOINT falco-reporter run
"""


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_dockerfile_follows_rule(dockerfile, rule):
    """The repository's Dockerfile passes this image rule."""
    assert rule(dockerfile) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_catches_a_bad_dockerfile(rule):
    """The same rule reports a problem in a Dockerfile that breaks it (the check is not vacuous)."""
    assert rule(parse(BAD_DOCKERFILE)), f"{rule.__name__} found nothing wrong in the bad Dockerfile"


def test_extras_allowed_by_the_dockerfile_match_pyproject():
    """The EXTRAS the Dockerfile accepts are exactly the LLM provider extras in pyproject.toml."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    allowed = set(re.search(r"\n\s*([a-z_|]+)\)\s*;;", text).group(1).split("|"))
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert allowed == extras - {"test", "lint", "devcluster"}


def test_entrypoint_is_the_installed_console_script():
    """ENTRYPOINT names the console script that pyproject.toml installs."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("falco-reporter") == "falco_reporter.cli:main"


def test_builder_copies_only_what_the_wheel_needs(dockerfile):
    """The builder copies pyproject.toml, README.md and operator/ only (no tests, no .venv, no bin)."""
    sources = set()
    for inst in dockerfile.stages[0].all("COPY"):
        parts = [p for p in inst.args.split() if not p.startswith("--")]
        sources.update(parts[:-1])
    assert sources == {"pyproject.toml", "README.md", "operator"}


def test_dockerignore_is_an_allow_list():
    """.dockerignore excludes everything except the files the build copies."""
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    assert {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")} == {
        "pyproject.toml",
        "README.md",
        "operator",
    }


def test_final_stage_runs_no_compiler_and_drops_build_stage_tools(dockerfile):
    """Compilers are installed (for llama.cpp) only in the builder, never in the final stage."""
    builder_runs = " ".join(i.args for i in dockerfile.stages[0].all("RUN"))
    final_runs = " ".join(i.args for i in dockerfile.final.all("RUN"))
    assert "build-essential" in builder_runs
    assert "build-essential" not in final_runs
    assert "cmake" not in final_runs


def test_a_local_wheelhouse_is_used_only_when_given(dockerfile):
    """WHEELHOUSE defaults to empty (PyPI, as users build); when set, pip uses only that find-links location."""
    builder = dockerfile.stages[0]
    assert any(i.args == 'WHEELHOUSE=""' for i in builder.all("ARG"))
    (install,) = [" ".join(i.args.split()) for i in builder.all("RUN") if "python -m venv" in i.args]
    assert install.startswith(
        'if [ -n "${WHEELHOUSE}" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS="${WHEELHOUSE}"; fi && '
    )
