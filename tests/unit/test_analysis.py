"""The static analysis: each rule caught in every form, and ordinary data-science code left alone."""

from __future__ import annotations

import pytest

from core.analysis import CodeAnalyzer
from core.policies import DEFAULT_POLICY_DIR, FilesystemPolicy, ImportPolicy


@pytest.fixture(scope="module")
def analyzer() -> CodeAnalyzer:
    return CodeAnalyzer(ImportPolicy.load(DEFAULT_POLICY_DIR), FilesystemPolicy.load(DEFAULT_POLICY_DIR))


def rules(analyzer: CodeAnalyzer, code: str) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in analyzer.analyze(code).errors]


@pytest.mark.parametrize("code", [
    "import subprocess",
    "import os.path",
    "from os import system",
    "from subprocess import run as r",
    "import numpy, socket",
    "__import__('subprocess')",
    "import importlib\nimportlib.import_module('ctypes')",
])
def test_blocked_imports_are_caught_in_every_form(analyzer: CodeAnalyzer, code: str) -> None:
    assert "blocked_import" in {rule for rule, _ in rules(analyzer, code)}


@pytest.mark.parametrize("code, rule", [
    ("eval('1+1')", "blocked_builtin"),
    ("f = exec", "blocked_builtin"),
    ("compile('x', 'f', 'exec')", "blocked_builtin"),
    ("().__class__.__bases__[0].__subclasses__()", "introspection"),
    ("def f(): pass\nf.__globals__['x']", "introspection"),
    ("print.__self__.__builtins__", "introspection"),
    ("(lambda: 0).__code__", "introspection"),
    ("import sys\nsys._getframe().f_back.f_globals", "introspection"),
    ("g = (i for i in [1])\ng.gi_frame", "introspection"),
    ("try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame", "introspection"),
    ("getattr(object, '__subclasses__')", "introspection"),
])
def test_escape_classes_are_errors(analyzer: CodeAnalyzer, code: str, rule: str) -> None:
    assert rule in {found for found, _ in rules(analyzer, code)}


def test_syntax_errors_have_a_position(analyzer: CodeAnalyzer) -> None:
    analysis = analyzer.analyze("x = 1\ndef f(:\n    pass")
    assert not analysis.valid
    (finding,) = analysis.errors
    assert finding.rule == "syntax_error" and finding.line == 2 and finding.col >= 0


def test_warnings_for_paths_outside_the_policy_and_native_code(analyzer: CodeAnalyzer) -> None:
    analysis = analyzer.analyze("open('/etc/passwd')\nopen('/usr/x', 'w')\nopen('/workspace/ok.txt', 'w')\n"
                                "import ctypes")
    warnings = [(f.rule, f.line) for f in analysis.warnings]
    assert ("path_outside_policy", 1) in warnings and ("path_outside_policy", 2) in warnings
    assert ("native_code", 4) in warnings
    assert not any(line == 3 for _, line in warnings)


def test_ordinary_data_science_code_is_valid(analyzer: CodeAnalyzer) -> None:
    code = ("import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\nfrom math import pi\n"
            "df = pd.DataFrame({'a': np.arange(3)})\nplt.plot(df['a'])\nwith open('/workspace/out.csv', 'w') as f:\n"
            "    df.to_csv(f)\nclass Point:\n    def __init__(self):\n        self.x = pi\nprint(Point().x)\n")
    analysis = analyzer.analyze(code)
    assert analysis.valid and analysis.warnings == ()


def test_the_api_shape(analyzer: CodeAnalyzer) -> None:
    shape = analyzer.analyze("eval('1')").to_api(include_warnings=False)
    assert shape == {"valid": False, "errors": [{"line": 1, "col": 0, "rule": "blocked_builtin",
                                                 "message": "the builtin 'eval' is blocked by the import policy"}],
                     "warnings": []}


def test_strict_validation_agrees_with_the_run_time_layer_on_every_bypass_program(analyzer: CodeAnalyzer) -> None:
    from tests.integration.test_policy_bypass import DATA_SCIENCE, READS, VIOLATIONS, WRITES

    for name, code, _ in VIOLATIONS:
        assert not analyzer.analyze(code).valid, name  # strict refuses what the run-time layer refuses
    for name, code in [(n, c) for n, c in READS] + [(n, c) for n, c, _ in WRITES]:
        analysis = analyzer.analyze(code)
        assert not analysis.valid or analysis.warnings, name
    ordinary = analyzer.analyze(DATA_SCIENCE)
    assert ordinary.valid and ordinary.warnings == (), ordinary


@pytest.mark.parametrize("code", [
    "import pathlib\npathlib.os.system('x')",
    "import typing\ntyping.sys.modules",
    "import sqlite3",
    "import _posixsubprocess",
    "from subprocess import _posixsubprocess",
    "getattr(__import__('pathlib'), 'os')",
    "open(4, 'w')",
])
def test_aliases_private_modules_and_modules_outside_the_allowlist_are_errors(analyzer: CodeAnalyzer,
                                                                             code: str) -> None:
    assert not analyzer.analyze(code).valid


def test_literal_paths_are_judged_after_their_known_links_and_dots(analyzer: CodeAnalyzer) -> None:
    analysis = analyzer.analyze("open('/dev/fd/../../self/environ')\nopen('/dev/shm/x', 'w')\n"
                                "import pathlib\npathlib.Path('/workspace/../etc/passwd').read_text()\n"
                                "open('/workspace/fine.txt', 'w')")
    assert [f.line for f in analysis.warnings] == [1, 2, 4]


def test_a_policy_that_blocks_nothing_has_no_allowlist_either() -> None:
    imports = ImportPolicy(frozenset({"numpy"}), frozenset(), frozenset(), frozenset())
    filesystem = FilesystemPolicy(("/workspace",), (), ())
    assert CodeAnalyzer(imports, filesystem).analyze("import os\nos.getpid()").valid
