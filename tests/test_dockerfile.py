"""The container image, checked without Docker: its Dockerfile's essentials, and that it holds all the app needs."""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib import metadata
from pathlib import Path

from bot.settings import PROJECT_DIR

DOCKERFILE = PROJECT_DIR / "Dockerfile"
DOCKERIGNORE = PROJECT_DIR / ".dockerignore"
IMAGE_SOURCES = ("app.py", "bot", "cards")  # what the Dockerfile copies
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|TOKEN|PRIVATE|CLIENTSECRET|CERTPFX|API_?KEY", re.IGNORECASE)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    parsed = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            parsed.append((keyword.upper(), arguments.strip()))
    return parsed


def arguments_of(keyword: str) -> list[str]:
    return [arguments for found, arguments in instructions() if found == keyword]


def test_python_slim_base_and_the_runtime_requirements_only() -> None:
    assert arguments_of("FROM") == ["python:3.11-slim"]
    runs = " ".join(arguments_of("RUN"))
    assert "pip install --no-cache-dir -r requirements.txt" in runs
    assert "requirements-dev" not in DOCKERFILE.read_text(encoding="utf-8")
    assert "compileall" in runs, "bytecode is compiled at build time"


def test_runs_as_an_unprivileged_user() -> None:
    users = arguments_of("USER")
    assert users, "a USER instruction"
    final = users[-1].split(":")[0]
    assert final not in ("root", "0")
    keywords = [keyword for keyword, _ in instructions()]
    assert keywords.index("USER") > max(index for index, keyword in enumerate(keywords) if keyword == "RUN")


def test_port_healthcheck_and_command() -> None:
    assert arguments_of("EXPOSE") == ["3978"]
    [healthcheck] = arguments_of("HEALTHCHECK")
    assert "/healthz" in healthcheck and "CMD" in healthcheck
    [command] = arguments_of("CMD")
    assert json.loads(command) == ["python", "app.py"]


def test_no_secret_in_the_image_definition() -> None:
    for keyword in ("ENV", "ARG", "LABEL"):
        for arguments in arguments_of(keyword):
            assert not SECRET_WORDS.search(arguments), f"{keyword} {arguments}"
    copied = " ".join(arguments_of("COPY") + arguments_of("ADD"))
    assert ".env" not in copied and ".pfx" not in copied and ".pem" not in copied
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignored[0] == "*", "everything is excluded unless listed"
    assert {"**/.env", "**/*.pfx", "**/*.pem", "**/*.db"} <= set(ignored)


def test_the_copied_sources_are_all_the_app_imports() -> None:
    """Nothing the image runs imports a project folder the Dockerfile does not copy (tests, manifest, bench…)."""
    local_packages = {path.name for path in PROJECT_DIR.iterdir() if (path / "__init__.py").is_file()}
    copied = {Path(source).stem for source in IMAGE_SOURCES}
    for module in imported_modules():
        top = module.split(".")[0]
        if top in local_packages:
            assert top in copied, f"the image lacks {top}/, which the app imports ({module})"


def test_every_third_party_import_is_installed_by_requirements_txt() -> None:
    installed = requirement_closure(PROJECT_DIR / "requirements.txt")
    distributions = metadata.packages_distributions()
    local = {path.name for path in PROJECT_DIR.iterdir()} | {Path(source).stem for source in IMAGE_SOURCES}
    missing = set()
    for module in imported_modules():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in local or top == "__future__":
            continue
        providers = {normalise(name) for name in distributions.get(top, [])}
        if not providers & installed:
            missing.add(f"{top} (from {', '.join(sorted(providers)) or 'an unknown distribution'})")
    assert not missing, f"imported by the app but not installed by requirements.txt: {sorted(missing)}"


def imported_modules() -> set[str]:
    files = [PROJECT_DIR / "app.py"]
    for folder in IMAGE_SOURCES[1:]:
        files += sorted((PROJECT_DIR / folder).rglob("*.py"))
    found: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(requirements: Path) -> set[str]:
    """The distributions requirements.txt installs: the listed ones and, recursively, what they require."""
    pending = [
        normalise(re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0])
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith(("#", "-"))
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            pending.append(normalise(re.split(r"[<>=!~;\[ (]", requirement.strip(), maxsplit=1)[0]))
    return seen
