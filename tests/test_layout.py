"""The layout's contract, read from the source with ``ast``: who may import whom, and how long.

- The components (``connectors``, ``streams``, ``consumers``) never import each other: they
  meet only on Kafka topics and in the kernel.
- ``bus/`` (the kernel) and ``schemas/`` (the wire format) import no component and not
  ``deploy``; no component imports ``deploy`` (the dev stack and the compose generator run
  components, never the reverse).
- ``streams/routing/`` is the pure routing core: nothing from ``streams/runtime/`` (the faust
  shell), nor faust or aiokafka.
- No module in the project's packages is over ``MAX_LINES`` lines.
- No test module imports another test module or a ``conftest``: shared helpers live in helper
  modules (``tests/support/traced.py``, ``tests/support/harness.py``, ...), shared fixtures in a
  ``conftest.py``.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: each is a
dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bus", "schemas", "connectors", "streams", "consumers", "deploy", "bench")
COMPONENTS = ("connectors", "streams", "consumers")
MAX_LINES = 400


@dataclass(frozen=True)
class Rule:
    """Modules under ``source`` never import a module under any of ``forbidden``."""

    source: str
    forbidden: tuple[str, ...]
    why: str


RULES = (
    *(
        Rule(
            component,
            tuple(other for other in COMPONENTS if other != component),
            "components meet on topics and in bus/, never import each other",
        )
        for component in COMPONENTS
    ),
    Rule("bus", (*COMPONENTS, "deploy"), "bus/ is the kernel: it imports no component nor deploy/"),
    Rule("schemas", (*COMPONENTS, "deploy"), "schemas/ is the wire format every component shares"),
    *(
        Rule(component, ("deploy",), "deploy/ runs the components, never the reverse")
        for component in COMPONENTS
    ),
    Rule(
        "streams.routing",
        ("streams.runtime", "faust", "aiokafka"),
        "streams/routing/ is the pure core: no faust shell, no faust, no aiokafka",
    ),
)


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``path``, relative ones made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            yield node.lineno, module
            # `from streams import runtime` imports streams.runtime.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def modules(root: Path) -> Iterator[Path]:
    for package in PACKAGES:
        if (root / package).is_dir():
            yield from sorted((root / package).rglob("*.py"))


def import_violations(root: Path) -> list[str]:
    found: list[str] = []
    for path in modules(root):
        name = module_name(root, path)
        rules = [rule for rule in RULES if under(name, rule.source)]
        if not rules:
            continue
        seen: set[tuple[int, str]] = set()
        for line, imported in imports(root, path):
            for rule in rules:
                for forbidden in rule.forbidden:
                    if under(imported, forbidden) and (line, forbidden) not in seen:
                        seen.add((line, forbidden))
                        where = path.relative_to(root)
                        found.append(f"{where}:{line} imports {imported} ({rule.why})")
    return found


def long_modules(root: Path, max_lines: int = MAX_LINES) -> list[str]:
    found = []
    for path in modules(root):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > max_lines:
            found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def is_test_module(module: str) -> bool:
    last = module.rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def imports_of_test_modules(root: Path) -> list[str]:
    """Imports of a test module (or a conftest) from anywhere under ``root/tests``."""
    found = []
    for path in sorted((root / "tests").rglob("*.py")):
        for line, imported in imports(root, path):
            if imported.startswith("tests.") and is_test_module(imported):
                found.append(f"{path.relative_to(root)}:{line} imports {imported}")
    return found


# -- the project ------------------------------------------------------------------------------
def test_the_packages_import_only_what_the_layout_allows() -> None:
    found = import_violations(ROOT)
    assert not found, "imports the layout forbids:\n  " + "\n  ".join(found)


def test_no_module_is_over_the_line_limit() -> None:
    found = long_modules(ROOT)
    assert not found, f"modules over {MAX_LINES} lines (split them):\n  " + "\n  ".join(found)


def test_no_test_module_imports_another() -> None:
    found = imports_of_test_modules(ROOT)
    assert not found, (
        "tests importing a test module (move what they share to a helper module or a "
        "conftest.py):\n  " + "\n  ".join(found)
    )


# -- the checks themselves, on a made-up tree ---------------------------------------------------
def write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_each_forbidden_import_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    for package in ("bus", "connectors", "streams", "streams/routing", "consumers", "deploy"):
        write(tmp_path, f"{package}/__init__.py")
    write(tmp_path, "bus/settings.py", "import os\nfrom consumers.inbox import api\n")
    write(tmp_path, "bus/cli.py", "def main():\n    from deploy.local import run\n")
    write(tmp_path, "connectors/gateway.py", "from bus import settings\nimport streams.cli\n")
    write(tmp_path, "consumers/feed.py", "from typing import TYPE_CHECKING\nfrom deploy import x\n")
    write(tmp_path, "streams/routing/router.py", "import faust\nfrom aiokafka import structs\n")
    write(tmp_path, "streams/routing/outputs.py", "from ..runtime import app\n")
    write(tmp_path, "streams/routing/decide.py", "from streams import runtime\n")
    write(tmp_path, "streams/routing/policy.py", "from . import decide\nfrom bus import topics\n")
    write(tmp_path, "deploy/run.py", "import connectors\nimport streams\nimport consumers\n")

    found = import_violations(tmp_path)

    def named(prefix: str) -> list[str]:
        return [line for line in found if line.startswith(prefix)]

    assert named("bus/settings.py:2 imports consumers.inbox ")
    assert named("bus/cli.py:2 imports deploy.local ")
    assert named("connectors/gateway.py:2 imports streams.cli ")
    assert named("consumers/feed.py:2 imports deploy ")
    assert named("streams/routing/router.py:1 imports faust ")
    assert named("streams/routing/router.py:2 imports aiokafka ")
    assert named("streams/routing/outputs.py:1 imports streams.runtime ")
    assert named("streams/routing/decide.py:1 imports streams.runtime ")
    assert "pure core" in named("streams/routing/router.py:1")[0]
    assert len(found) == 8, "\n".join(found)  # deploy/ and the allowed imports are not named


def test_a_module_over_the_limit_is_named_with_its_length(tmp_path: Path) -> None:
    write(tmp_path, "bus/long.py", "x = 1\n" * (MAX_LINES + 1))
    write(tmp_path, "bus/short.py", "x = 1\n" * MAX_LINES)
    write(tmp_path, "tests/test_long.py", "x = 1\n" * (MAX_LINES + 1))  # tests are not packages
    assert long_modules(tmp_path) == [f"bus/long.py: {MAX_LINES + 1} lines"]


def test_an_import_of_a_test_module_is_named(tmp_path: Path) -> None:
    write(tmp_path, "tests/__init__.py")
    write(tmp_path, "tests/unit/test_a.py", "from tests.unit.test_b import helper\n")
    write(tmp_path, "tests/unit/test_c.py", "from tests.support import records, test_b\n")
    write(tmp_path, "tests/unit/test_d.py", "from tests.conftest import free_ports\n")
    write(tmp_path, "tests/unit/test_e.py", "from tests.support.records import consent\n")
    assert imports_of_test_modules(tmp_path) == [
        "tests/unit/test_a.py:1 imports tests.unit.test_b",
        "tests/unit/test_c.py:1 imports tests.support.test_b",
        "tests/unit/test_d.py:1 imports tests.conftest",
    ]
