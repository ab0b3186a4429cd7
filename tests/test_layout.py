"""The house: the core at the package's top level imports no subpackage, and stays small.

The core is what a learner reads; the subpackages (the engine room) import it, never the reverse.
The wiring that needs both lives in elpo_min.launch. A test that walks the imports with ``ast``
catches a violation wherever it hides, inside a function included.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "elpo_min"
CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__main__.py")
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
# dependencies only the engine room may import; the core must run without them
FORBIDDEN = {"accelerate", "bitsandbytes", "peft", "deepspeed"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the file, relative ones spelled ``.name``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.level and not node.module:
                # "from . import x": x is the module
                found += [(node.lineno, "." + alias.name) for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def boundary_violations(path: Path) -> list[str]:
    bad = []
    for line, module in imported_modules(path):
        top = module.lstrip(".").split(".")[0]
        if module.startswith(".") and top in SUBPACKAGES:
            bad.append(f"{path.name}:{line} imports the subpackage {module}")
        if module.startswith("elpo_min.") and module.split(".")[1] in SUBPACKAGES:
            bad.append(f"{path.name}:{line} imports the subpackage {module}")
        if not module.startswith(".") and top in FORBIDDEN:
            bad.append(f"{path.name}:{line} imports {top}")
    return bad


def test_there_is_a_core_and_an_engine_room():
    assert {p.name for p in CORE} >= {"toy.py", "rollout.py", "bel.py", "advantages.py", "loss.py"}
    assert {"fast_decoder", "launch", "tools", "tasks", "models", "parallel"} <= set(SUBPACKAGES)


def test_no_core_module_imports_a_subpackage_or_an_optional_dependency():
    bad = [v for path in CORE for v in boundary_violations(path)]
    assert not bad, "\n".join(bad)


def test_the_boundary_check_catches_a_violation(tmp_path):
    """The check above must be able to fail: a core-like file with each kind of bad import."""
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "from .fast_decoder import FastDecoder\n"
        "def f():\n"
        "    from . import tools\n"
        "    import elpo_min.parallel.accelerated\n"
        "    import bitsandbytes\n"
    )
    assert len(boundary_violations(sneaky)) == 4


def test_every_subpackage_says_what_it_holds_and_why_it_is_outside_the_core():
    for name in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and "outside the core" in doc, name


def test_the_core_stays_an_afternoons_read():
    core = sum(len(p.read_text().splitlines()) for p in CORE)
    # 1800, plus the 40 lines that keep a tool's output from forging the turn format (issue 30)
    assert core <= 1840, f"the core is {core} lines; move machinery into a subpackage"
