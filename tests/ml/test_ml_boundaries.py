"""Package boundaries: serving carries no training dependency, and ml/ stands alone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ML_DIR = Path(__file__).resolve().parents[2] / "ml"


def test_serving_module_imports_no_training_libraries() -> None:
    # Given a fresh interpreter / When only the serving module is imported
    code = (
        "import sys, ml.inference; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'skl2onnx', 'onnx', 'scipy'}))"
    )
    env = dict(os.environ, PYTHONPATH=str(ML_DIR.parent))
    result = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ML_DIR.parent, env=env, check=True
    )
    # Then no training library came along
    assert result.stdout.strip() == "[]"


def test_ml_does_not_import_the_app_or_its_adapters() -> None:
    forbidden = {"app", "connectors", "recovery"}
    for source in ML_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & forbidden, f"{source.name} imports {names}"
