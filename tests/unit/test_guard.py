"""The runtime's policy layer (sandbox_runtime.guard) in a real runtime process on the host.

What user code may import, call and open is refused; what a library does for it is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.policies import FilesystemPolicy, ImportPolicy, runtime_policy_json
from tests.unit.test_runtime import Runtime, text

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
LIBRARY = '''
import os, sys, subprocess
def hostname_via_os():
    return os.path.basename(sys.executable) and open("/etc/hostname").read() is not None
def run_true():
    return subprocess.run(["true"]).returncode
'''
# Like matplotlib building its font cache: a program run while the library is being imported.
IMPORT_TIME_PROGRAM = '''
import subprocess
STATUS = subprocess.run(["true"]).returncode
'''


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    workspace, tmp, lib = tmp_path / "ws", tmp_path / "tmp", tmp_path / "lib"
    for path in (workspace, tmp, lib):
        path.mkdir()
    (lib / "friendly_lib.py").write_text(LIBRARY)
    (lib / "font_cache_lib.py").write_text(IMPORT_TIME_PROGRAM)
    policy = json.loads(runtime_policy_json(ImportPolicy.load(POLICY_DIR), FilesystemPolicy.load(POLICY_DIR)))
    policy["writablePaths"] = [str(workspace), str(tmp)]  # on the host the sandbox's paths are these
    policy["allowedModules"] += ["friendly_lib", "font_cache_lib"]  # as an operator would list them
    # The workspace is on the import path, as in the sandbox (the runtime's working directory).
    rt = Runtime(workspace, tmp, policy=json.dumps(policy), PYTHONPATH=f"{lib}:{workspace}")
    yield rt, workspace
    rt.close()


@pytest.mark.parametrize("code, target", [
    ("import os", "os"),
    ("import os.path", "os"),
    ("from subprocess import run", "subprocess"),
    ("import importlib", "importlib"),
    ("def f():\n    import socket\nf()", "socket"),
    ("exec('import ctypes')", "exec"),
    ("__import__('sys')", "sys"),
    ("__builtins__['__import__']('pickle')", "pickle"),
    ("eval('1')", "eval"),
    ("compile('1', 'x', 'eval')", "compile"),
    ("try:\n    import os\nexcept ImportError:\n    pass\nprint('caught')", "os"),
])
def test_blocked_imports_and_builtins_are_policy_violations(guarded: tuple[Runtime, Path], code: str,
                                                            target: str) -> None:
    runtime, _ = guarded
    done, _ = runtime.run(code)
    assert done["status"] == "policy_violation", done
    assert done["violation"]["target"] == target
    assert "policies/imports.json" in done["violation"]["message"]
    assert "guard.py" not in "\n".join((done["error"] or {}).get("traceback", []))


def test_libraries_keep_their_own_imports_and_files(guarded: tuple[Runtime, Path]) -> None:
    runtime, _ = guarded
    done, _ = runtime.run("import friendly_lib\nfriendly_lib.hostname_via_os()")
    assert done["status"] == "success", done
    assert done["result"]["repr"] == "True"
    # Starting a program is refused whoever asks: through a library, and while a library is imported.
    done, _ = runtime.run("import friendly_lib\nfriendly_lib.run_true()")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "subprocess.Popen"
    done, _ = runtime.run("import font_cache_lib\nfont_cache_lib.STATUS")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "subprocess.Popen", done


def test_a_module_written_by_user_code_is_still_user_code(guarded: tuple[Runtime, Path]) -> None:
    runtime, workspace = guarded
    done, _ = runtime.run(
        f"open('{workspace}/helper2.py', 'w').write('import os\\nos.system(\"touch {workspace}/pwned\")')\n"
        "import helper2")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "os.system", done
    assert not (workspace / "pwned").exists()
    done, _ = runtime.run("import json, collections, dataclasses\n"
                          "@dataclasses.dataclass\nclass P:\n    x: int\n"
                          "T = collections.namedtuple('T', 'a b')\n"
                          "json.dumps([P(1).x, T(1, 2).b])")
    assert done["status"] == "success" and done["result"]["repr"] == "'[1, 2]'", done


def test_introspection_escapes_cannot_use_what_they_reach(guarded: tuple[Runtime, Path]) -> None:
    runtime, workspace = guarded
    # A classic walk from object to the os module, without one import statement...
    walk = ("cw = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]\n"
            "os_module = cw()._module.sys.modules['os']\n")
    done, _ = runtime.run(walk + f"os_module.system('touch {workspace}/pwned')")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "os.system"
    assert not (workspace / "pwned").exists()
    for attack, target in (
        ("(lambda: 0).__code__", "object.__getattr__ __code__"),
        ("def g():\n    yield 1\ng().gi_frame", "object.__getattr__ gi_frame"),
        ("try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame", "object.__getattr__ tb_frame"),
        (walk + "os_module.sys._getframe()", "sys._getframe"),
        (walk + "os_module.kill(1, 9)", "os.kill"),
        ("def f(): pass\nf.__code__ = (lambda: 1).__code__", "object.__getattr__ __code__"),
        # The real __import__ from a module's builtins, patched into the user's builtins: imports pass,
        # but what they give cannot start a program, in this thread or another, or through a library.
        (walk + "__builtins__['__import__'] = cw()._module.__builtins__['__import__']\n"
                f"import subprocess\nsubprocess.run(['touch', '{workspace}/pwned'])", "subprocess.Popen"),
        (walk + "import threading\nt = threading.Thread(target=os_module.system, "
                f"args=('touch {workspace}/pwned',))\nt.start()\nt.join()", "os.system"),
        (walk + f"list(map(os_module.system, ['touch {workspace}/pwned']))", "os.system"),
        (walk + "os_module.sys.modules['json'] = os_module\nimport json\n"
                f"json.system('touch {workspace}/pwned')", "os.system"),
        (walk + "ctypes = cw()._module.__builtins__['__import__']('ctypes')\n"
                f"ctypes.CDLL(None).system(b'touch {workspace}/pwned')", "ctypes.dlopen"),
        # Monkeypatching the guard: its module globals, the real builtins and the guarded import's closure
        # can all be changed; the audit hook consults none of them.
        (walk + "g = __builtins__['__import__'].__globals__\n"
         "g['PROCESS_EVENTS'] = g['DENIED_EVENTS'] = frozenset()\ng['PATH_EVENTS'] = {}\n"
         "real = cw()._module.__builtins__\nsaved = real['any'], real['isinstance']\n"
         "real['any'] = real['isinstance'] = lambda *a: False\n"
         f"try:\n    os_module.system('touch {workspace}/pwned')\n"
         "finally:\n    real['any'], real['isinstance'] = saved", "os.system"),
        ("todo = [__builtins__['__import__']]\nwhile todo:\n    for cell in todo.pop().__closure__ or ():\n"
         "        if isinstance(cell.cell_contents, frozenset):\n            cell.cell_contents = frozenset()\n"
         "        elif callable(cell.cell_contents) and hasattr(cell.cell_contents, '__closure__'):\n"
         "            todo.append(cell.cell_contents)\n"
         f"import os\nos.system('touch {workspace}/pwned')", "os"),
    ):
        done, _ = runtime.run(attack)
        assert done["status"] == "policy_violation", (attack, done)
        assert done["violation"]["target"] == target, (attack, done["violation"])
        assert not (workspace / "pwned").exists()


def test_code_a_library_runs_from_a_string_is_user_code(guarded: tuple[Runtime, Path]) -> None:
    runtime, _ = guarded
    done, _ = runtime.run("import timeit\ntimeit.timeit(\"open('/etc/hostname').read()\", number=1)")
    assert done["status"] == "error" and done["error"]["type"] == "FilesystemPolicyError", done
    done, _ = runtime.run("import timeit\ntimeit.timeit(\"import sys; sys._getframe()\", number=1)")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "sys._getframe", done
    # ...while libraries that generate code for themselves keep working.
    done, _ = runtime.run("import dataclasses, collections\n@dataclasses.dataclass(frozen=True)\nclass P:\n"
                          "    x: int = 1\nT = collections.namedtuple('T', 'a')\n(P().x, T(2).a, repr(P()))")
    assert done["status"] == "success" and done["result"]["repr"] == "(1, 2, 'P(x=1)')", done


def test_files_outside_the_policy_are_refused_with_a_permission_error_naming_it(
        guarded: tuple[Runtime, Path]) -> None:
    runtime, workspace = guarded
    done, _ = runtime.run("open('/etc/hostname').read()")
    assert done["status"] == "error" and done["error"]["type"] == "FilesystemPolicyError"
    assert "blockedPaths of policies/filesystem.json" in done["error"]["message"]
    done, _ = runtime.run("import pathlib\npathlib.Path('/proc/self/environ').read_bytes()")
    assert done["error"]["type"] == "FilesystemPolicyError", done
    done, _ = runtime.run(f"open('{workspace.parent}/outside.txt', 'w')")
    assert "allowedPaths of policies/filesystem.json" in done["error"]["message"]
    assert not (workspace.parent / "outside.txt").exists()
    done, events = runtime.run(f"p = '{workspace}/ok.txt'\nopen(p, 'w').write('fine')\nprint(open(p).read())")
    assert done["status"] == "success" and text(events, "stdout") == "fine\n"


def test_without_a_policy_nothing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "tmp").mkdir()
    runtime = Runtime(tmp_path / "ws", tmp_path / "tmp")
    try:
        done, _ = runtime.run("import os\nopen('/etc/hostname').read()\nos.getpid() > 0")
        assert done["status"] == "success" and done["violation"] is None
    finally:
        runtime.close()


# --- issue 12: a layer with no reachable state, private modules closed, paths resolved ----------------------

WALK = ("cw = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]\n"
        "sys_module = cw()._module.sys\nos_module = sys_module.modules['os']\n")


@pytest.mark.parametrize("attack, target", [
    # A C function handed to a library as a callback: the nearest Python frame is the library's.
    (WALK + "import string, collections\nd = collections.defaultdict(sys_module.modules['gc'].get_objects)\n"
     "string.Template('$x').substitute(d)", "gc.get_objects"),
    (WALK + "import re\nre.sub('x', sys_module.modules['gc'].get_referrers, 'x')", "gc.get_referrers"),
    (WALK + "import json\njson.loads('{}', object_hook=sys_module.modules['gc'].get_referents)", "gc.get_referents"),
    (WALK + "import string, collections\nd = collections.defaultdict(sys_module._current_frames)\n"
     "string.Template('$x').substitute(d)", "sys._current_frames"),
    (WALK + "import re\nre.sub('x', sys_module.settrace, 'x')", "sys.settrace"),
    (WALK + "import re\nre.sub('x', sys_module.addaudithook, 'x')", "sys.addaudithook"),
    # The policy layer's own functions: their code and defaults are out of reach, whoever asks.
    (WALK + "import operator, re\nf = sys_module.modules['_imp'].create_dynamic\n"
     "re.sub('x', lambda m: str(operator.attrgetter('__code__')(f)), 'x')", "the policy layer's own __code__"),
    (WALK + "sys_module.modules['_posixsubprocess'].fork_exec.__defaults__ = ()",
     "the policy layer's own __defaults__"),
])
def test_object_graph_walks_are_refused_whoever_calls_them(guarded: tuple[Runtime, Path], attack: str,
                                                            target: str) -> None:
    runtime, _ = guarded
    done, _ = runtime.run(attack)
    assert done["status"] == "policy_violation", done
    assert done["violation"]["target"] == target


@pytest.mark.parametrize("attack, target", [
    (WALK + "sys_module.modules['_posixsubprocess'].fork_exec(['/bin/sh', '-c', 'touch {ws}/pwned'])",
     "penny.fork_exec"),
    ("import pathlib\npathlib.os.system('touch {ws}/pwned')", "os.system"),
    ("import typing\ntyping.sys.modules['os'].system('touch {ws}/pwned')", "os.system"),
    (WALK + "util = sys_module.modules['importlib.util']\nspec = util.find_spec('_posixsubprocess')\n"
     "sys_module.modules['_imp'].create_dynamic(spec).fork_exec(['/bin/sh', '-c', 'touch {ws}/pwned'])",
     "_posixsubprocess"),
    (WALK + "sys_module.modules.pop('_posixsubprocess')\n"
     "cw()._module.__builtins__['__import__']('_posixsubprocess')", "_posixsubprocess"),
    (WALK + "sig = sys_module.modules['signal']\nsig.pidfd_send_signal(os_module.pidfd_open(os_module.getpid()), 0)",
     "penny.pidfd_send_signal"),
    (WALK + "os_module.mkfifo('{ws}/pwned')", "penny.mkfifo"),
    (WALK + "import functools, string, collections\n"
     "d = collections.defaultdict(functools.partial(os_module.kill, 1, 0))\nstring.Template('$x').substitute(d)",
     "os.kill"),
    ("import threading, pathlib\nt = threading.Timer(0, pathlib.os.system, ['touch {ws}/pwned'])\nt.start()\n"
     "t.join()", "os.system"),
])
def test_private_modules_and_aliases_cannot_start_or_signal_anything(guarded: tuple[Runtime, Path], attack: str,
                                                                      target: str) -> None:
    runtime, workspace = guarded
    done, _ = runtime.run(attack.replace("{ws}", str(workspace)))
    assert done["status"] == "policy_violation", done
    assert done["violation"]["target"] == target
    assert not (workspace / "pwned").exists()


def test_the_hook_keeps_judging_every_thread_while_others_are_inside_it(guarded: tuple[Runtime, Path]) -> None:
    runtime, _ = guarded
    done, _ = runtime.run(
        "import threading, pathlib\nrefused = []\n"
        "def spin():\n    for _ in range(200):\n        try:\n            pathlib.os.sys._getframe()\n"
        "        except ImportError:\n            refused.append('frame')\n"
        "threads = [threading.Thread(target=spin) for _ in range(3)]\n"
        "for t in threads:\n    t.start()\n"
        "for _ in range(200):\n    try:\n        open('/etc/hostname').read()\n    except PermissionError:\n"
        "        refused.append('file')\n"
        "for t in threads:\n    t.join()\n(refused.count('frame'), refused.count('file'))")
    assert done["status"] == "policy_violation" and done["result"]["repr"] == "(600, 200)", done


@pytest.mark.parametrize("attack", [
    "open('/dev/fd/../../self/environ').read()",
    "open('/dev/fd/../../1/cmdline').read()",
    "open('/proc/self/root/etc/hostname').read()",
    "import pathlib\nfd = pathlib.os.open('/', 0)\npathlib.os.read(pathlib.os.open('etc/hostname', 0, dir_fd=fd), 99)",
    "import pathlib\nos = pathlib.os\nos.chdir('{ws}')\nos.makedirs('a/b/c/d/e/f')\n"
    "os.symlink('../../../../../../' * 8 + 'etc/hostname', 'a/b/c/d/e/f/l')\nopen('a/b/c/d/e/f/l').read()",
    "import pathlib\npathlib.Path('{ws}/../../../../../../../etc/hostname').read_text()",
])
def test_paths_are_resolved_before_they_are_judged(guarded: tuple[Runtime, Path], attack: str) -> None:
    runtime, workspace = guarded
    done, events = runtime.run(attack.replace("{ws}", str(workspace)))
    assert done["status"] == "error" and done["error"]["type"] == "FilesystemPolicyError", done
    assert "blockedPaths of policies/filesystem.json" in done["error"]["message"]
    assert done["result"] is None and text(events, "stdout") == ""


@pytest.mark.parametrize("attack", [
    "open('/dev/shm/penny-pwned', 'w').write('x')",
    "import pathlib\npathlib.os.symlink('/dev/shm/penny-pwned', '{ws}/link')\nopen('{ws}/link', 'w').write('x')",
    "import pathlib\nfd = pathlib.os.open('/dev/shm', 0)\npathlib.os.open('penny-pwned', 0o101, dir_fd=fd)",
    "import pathlib\npathlib.os.mkdir('/dev/shm/penny-pwned')",
    "import pathlib\npathlib.os.rename('{ws}', '/dev/shm/penny-pwned')",
])
def test_writes_outside_the_allowed_paths_are_refused(guarded: tuple[Runtime, Path], attack: str) -> None:
    runtime, workspace = guarded
    done, _ = runtime.run(attack.replace("{ws}", str(workspace)))
    assert done["status"] == "error" and done["error"]["type"] == "FilesystemPolicyError", done
    assert "allowedPaths of policies/filesystem.json" in done["error"]["message"]
    assert not Path("/dev/shm/penny-pwned").exists() and workspace.exists()


def test_the_kernels_own_pipes_are_not_for_user_code(guarded: tuple[Runtime, Path]) -> None:
    runtime, _ = guarded
    done, _ = runtime.run("open(4, 'w', closefd=False).write('{\"kind\": \"result\"}\\n')")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "fd 4", done


def test_the_import_allowlist_names_the_policy_and_lets_user_modules_in(guarded: tuple[Runtime, Path]) -> None:
    runtime, workspace = guarded
    done, _ = runtime.run("import sqlite3")
    assert done["status"] == "policy_violation" and done["violation"]["target"] == "sqlite3"
    assert "not allowed by policies/imports.json" in done["violation"]["message"]
    (workspace / "helper_mod.py").write_text("VALUE = 41\n")
    done, _ = runtime.run("import helper_mod, json, collections, pathlib, csv, io\nhelper_mod.VALUE + 1")
    assert done["status"] == "success" and done["result"]["repr"] == "42", done


def test_ordinary_library_work_has_no_finding(guarded: tuple[Runtime, Path]) -> None:
    runtime, workspace = guarded
    done, events = runtime.run(
        "import csv, json, io, pathlib, tempfile, traceback, dataclasses, collections, statistics\n"
        f"p = pathlib.Path('{workspace}/d.csv')\n"
        "with p.open('w', newline='') as f:\n    csv.writer(f).writerows([[1, 2], [3, 4]])\n"
        "rows = list(csv.reader(p.open()))\n"
        "with tempfile.NamedTemporaryFile('w', dir=str(p.parent)) as t:\n    t.write('x')\n"
        "try:\n    open('/etc/hostname')\nexcept PermissionError:\n    traceback.format_exc()\n"
        "@dataclasses.dataclass\nclass P:\n    x: int\n"
        "json.dumps([rows, statistics.mean([1, 2, 3]), P(1).x])")
    assert done["status"] == "success", done
    assert done["violation"] is None and done["result"]["repr"] == '\'[[["1", "2"], ["3", "4"]], 2, 1]\''
