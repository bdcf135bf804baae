"""The house's layering is a checked contract: import-linter runs the contracts in
pyproject.toml's [tool.importlinter] over the source roots, here on every test run.

The second test shows each contract can fail: it plants one violating import in a copy of
the roots and expects that contract, and the offending import, to be reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("cli", "client", "daemon", "models", "proto")
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True, limit_to_contracts=tuple(sys.argv[1:])))"


def lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / r) for r in SOURCE_ROOTS), "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-c", LINT, *contracts], cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_the_import_contracts():
    done = lint(ROOT)
    assert done.returncode == 0, f"import contracts broken (see pyproject.toml [tool.importlinter]):\n{done.stdout}{done.stderr}"
    assert "5 kept, 0 broken" in done.stdout, done.stdout


# contract id -> (file to plant the import in, the import, how the report names it)
VIOLATIONS = {
    "light-client": ("client/c2r/client/png.py", "import c2r.daemon.settings", "c2r.client.png -> c2r.daemon.settings"),
    "front-end-no-torch": ("daemon/c2r/daemon/settings.py", "import c2r.models.levers", "c2r.daemon.settings -> c2r.models.levers"),
    "engine-process-apart": ("daemon/c2r/daemon/server.py", "import c2r.daemon.engine", "c2r.daemon.server -> c2r.daemon.engine"),
    "roots-layered": ("models/c2r/models/windows.py", "import c2r.daemon.settings", "c2r.models.windows -> c2r.daemon.settings"),
    "no-cycles": ("client/c2r/client/errors.py", "from . import session", "No cycles are allowed in c2r.client.\nIt could be made acyclic by removing 1 dependency:\n\n- .errors -> .session"),
}  # fmt: skip


@pytest.mark.parametrize("contract", sorted(VIOLATIONS))
def test_each_contract_fails_on_a_planted_violation(tmp_path, contract):
    for root in SOURCE_ROOTS:
        shutil.copytree(ROOT / root, tmp_path / root, ignore=lambda _, names: [n for n in names if n == "__pycache__" or n.endswith((".md", ".cs"))])
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path, statement, reported = VIOLATIONS[contract]
    assert lint(tmp_path, contract).returncode == 0, "the copy must keep the contract before the violation"
    with open(tmp_path / path, "a") as f:
        f.write(f"\n{statement}\n")
    done = lint(tmp_path, contract)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout
    assert reported in done.stdout, done.stdout
