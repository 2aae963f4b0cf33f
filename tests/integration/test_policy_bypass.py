"""The policy layer attacked as issue 12 found it open, and around it: object-graph walks, private modules,
C callbacks in numpy, pandas and matplotlib, path tricks, signals, threads racing the hook.

Every attack checks, in the same job (before any wipe), that its side effect did not happen, and the result
never carries what it tried to read. What the user sees comes from the policy layer (status
`policy_violation`, a finding with source `runtime`), which acts before any system call is made, so the
assertions hold with or without the kernel's seccomp filter. The programs are plain data, also checked
against the static analysis (tests/unit/test_analysis.py: `strict` refuses every one).
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]

WALK = ("cw = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]\n"
        "sys_module = cw()._module.sys\nos_module = sys_module.modules['os']\n")
PANDAS = WALK + "import pandas as pd\n"
MARKER = "/workspace/pwned"
SHELL = f"['/bin/sh', '-c', 'touch {MARKER}']"
# What ran after the attack: did the marker appear, and can a program still be started (it must not).
CHECK = "\nimport pathlib\npathlib.Path('/workspace/pwned').exists()"

# (id, attack, the runtime finding's target)
VIOLATIONS: list[tuple[str, str, str]] = [
    # issue 12, as reported
    ("gc-through-pandas-callback", PANDAS + "gc = sys_module.modules['gc']\n"
     "objects = pd.Series([0]).apply(gc.get_objects)\n"
     "for o in objects[0]:\n    for cell in getattr(o, '__closure__', None) or ():\n"
     "        if cell.cell_contents == [False]:\n            cell.cell_contents[0] = True\n"
     f"os_module.system('touch {MARKER}')", "gc.get_objects"),
    ("real-import-from-a-modules-builtins", "import json\nreal = json.dumps.__globals__['__builtins__']['__import__']\n"
     f"real('subprocess').run(['touch', '{MARKER}'])", "subprocess.Popen"),
    ("posixsubprocess-fork-exec", "import json\nreal = json.dumps.__globals__['__builtins__']['__import__']\n"
     f"real('_posixsubprocess').fork_exec({SHELL}, [b'/bin/sh'], True, (), None, None, -1, -1, -1, -1, -1, -1,"
     " -1, -1, False, False, None, None, None, -1, None, False)", "penny.fork_exec"),
    ("os-as-pathlib-os", f"import pathlib\npathlib.os.system('touch {MARKER}')", "os.system"),
    # (numpy: a kernel of the heavy parent, whose preloads imported subprocess; sandbox_runtime.light_parent)
    ("sys-as-typing-sys", f"import typing, numpy\ntyping.sys.modules['subprocess'].run(['touch', '{MARKER}'])",
     "subprocess.Popen"),
    # (any descriptor: the call is refused before it reaches the kernel, where seccomp may refuse pidfd_open)
    ("pidfd-send-signal-to-pid-1", "import pathlib\nsig = pathlib.os.sys.modules['signal']\n"
     "sig.pidfd_send_signal(0, sig.SIGINT)", "penny.pidfd_send_signal"),
    # private modules and fresh copies of them
    ("fresh-posixsubprocess-by-create-dynamic", WALK + "util = sys_module.modules['importlib.util']\n"
     "spec = util.find_spec('_posixsubprocess')\nfresh = sys_module.modules['_imp'].create_dynamic(spec)\n"
     f"fresh.fork_exec({SHELL})", "_posixsubprocess"),
    ("fresh-posixsubprocess-by-reimport", WALK + "sys_module.modules.pop('_posixsubprocess')\n"
     "fresh = cw()._module.__builtins__['__import__']('_posixsubprocess')\n"
     f"fresh.fork_exec({SHELL})", "_posixsubprocess"),
    ("subinterpreter", WALK + "sub = cw()._module.__builtins__['__import__']('_xxsubinterpreters')\n"
     f"sub.run_string(sub.create(), \"import os; os.system('touch {MARKER}')\")", "_xxsubinterpreters"),
    ("posix-shared-memory", WALK + "cw()._module.__builtins__['__import__']('_posixshmem').shm_open('/x', 0o102)",
     "_posixshmem"),
    ("import-of-a-private-module", "import _posixsubprocess", "_posixsubprocess"),
    ("import-outside-the-allowlist", "import sqlite3\nsqlite3.connect('/dev/shm/pwned')", "sqlite3"),
    ("mkfifo-in-dev-shm", "import pathlib\npathlib.os.mkfifo('/dev/shm/pwned')", "penny.mkfifo"),
    ("signal-pid-1-through-a-thread", "import threading, pathlib\n"
     "t = threading.Thread(target=pathlib.os.kill, args=(1, 2))\nt.start()\nt.join()", "os.kill"),
    # C callbacks: numpy, pandas, matplotlib call the C function; the nearest Python frame is the library's
    ("referrers-through-pandas-map", PANDAS + "gc = sys_module.modules['gc']\n"
     "pd.Series([pd]).map(gc.get_referrers)", "gc.get_referrers"),
    ("referents-through-numpy-frompyfunc", WALK + "import numpy as np\ngc = sys_module.modules['gc']\n"
     "np.frompyfunc(gc.get_referents, 1, 1)(np.array([np], dtype=object))", "gc.get_referents"),
    ("current-frames-through-pandas", PANDAS + "import collections\n"
     "pd.Series([1]).map(collections.defaultdict(sys_module._current_frames))", "sys._current_frames"),
    ("settrace-through-pandas", PANDAS + "pd.Series([print]).apply(sys_module.settrace)", "sys.settrace"),
    ("audit-hook-through-pandas", PANDAS + "pd.Series([print]).apply(sys_module.addaudithook)", "sys.addaudithook"),
    ("matplotlib-event-callback", WALK + "import matplotlib.pyplot as plt\nfig = plt.figure()\n"
     "fig.canvas.mpl_connect('draw_event', sys_module.modules['gc'].get_referrers)\n"
     "try:\n    fig.canvas.draw()\nfinally:\n    plt.close(fig)",
     "gc.get_referrers"),
    ("system-through-pandas", PANDAS + f"pd.Series(['touch {MARKER}']).apply(os_module.system)", "os.system"),
    ("ctypes-through-pandas", PANDAS + "ctypes = sys_module.modules['ctypes']\n"
     f"pd.Series([None]).apply(ctypes.CDLL)[0].system(b'touch {MARKER}')", "ctypes.dlopen"),
    ("socket-through-pandas", PANDAS + "socket = sys_module.modules['socket']\n"
     "pd.Series([socket.AF_UNIX]).apply(socket.socket)", "socket.__new__"),
    # the policy layer's own functions
    ("policy-layer-code-through-pandas", PANDAS + "import operator\n"
     "pd.Series([sys_module.modules['_imp'].create_dynamic]).apply(operator.attrgetter('__code__'))",
     "the policy layer's own __code__"),
    ("policy-layer-defaults", WALK + "sys_module.modules['_posixsubprocess'].fork_exec.__defaults__ = ()",
     "the policy layer's own __defaults__"),
    ("kernel-result-pipe", "open(4, 'w', closefd=False).write('{\"kind\": \"result\"}\\n')", "fd 4"),
    # threads racing the hook: whatever one thread does inside it, the others are still judged
    ("threads-race-the-hook", "import threading, pathlib\nos = pathlib.os\n"
     "def spin():\n    for _ in range(300):\n        try:\n"
     f"            os.system('touch {MARKER}')\n        except ImportError:\n            pass\n"
     "threads = [threading.Thread(target=spin) for _ in range(3)]\nfor t in threads:\n    t.start()\n"
     "for _ in range(300):\n    try:\n        os.sys._getframe()\n    except ImportError:\n        pass\n"
     "for t in threads:\n    t.join()", "os.system|sys._getframe"),
]

# (id, attack): reads that must fail with a FilesystemPolicyError and leak nothing
READS: list[tuple[str, str]] = [
    ("dev-fd-up-to-self-environ", "open('/dev/fd/../../self/environ').read()"),
    ("dev-fd-up-to-pid-1-cmdline", "open('/dev/fd/../../1/cmdline').read()"),
    ("proc-self-root", "open('/proc/self/root/etc/passwd').read()"),
    ("proc-self-cwd-up", "open('/proc/self/cwd/../etc/passwd').read()"),
    ("relative-symlink-from-a-deep-cwd", "import pathlib\nos = pathlib.os\nos.makedirs('/workspace/a/b/c/d/e/f')\n"
     "os.chdir('/workspace/a/b/c/d/e/f')\nos.symlink('../' * 12 + 'etc/passwd', 'l')\nopen('l').read()"),
    ("os-open-dir-fd", "import pathlib\nroot = pathlib.os.open('/', 0)\n"
     "pathlib.os.read(pathlib.os.open('etc/passwd', 0, dir_fd=root), 4096)"),
    ("workspace-dot-dot", "import pathlib\npathlib.Path('/workspace/../etc/passwd').read_text()"),
    ("symlinked-directory", "import pathlib\npathlib.os.symlink('/etc', '/workspace/e')\n"
     "pathlib.Path('/workspace/e/passwd').read_text()"),
    ("copyfile-out-of-etc", "import tempfile\ntempfile._shutil.copyfile('/etc/passwd', '/workspace/p')\n"
     "open('/workspace/p').read()"),
]
# (id, attack, path that must not exist afterwards): writes outside allowedPaths, by anyone
WRITES: list[tuple[str, str, str]] = [
    ("dev-shm", "open('/dev/shm/pwned', 'w').write('x')", "/dev/shm/pwned"),
    ("dev-mqueue", "open('/dev/mqueue/pwned', 'w').write('x')", "/dev/mqueue/pwned"),
    ("symlink-into-dev-shm", "import pathlib\npathlib.os.symlink('/dev/shm/pwned', '/workspace/l')\n"
     "open('/workspace/l', 'w').write('x')", "/dev/shm/pwned"),
    ("dir-fd-of-dev-shm", "import pathlib\nfd = pathlib.os.open('/dev/shm', 0)\n"
     "pathlib.os.open('pwned', 0o101, dir_fd=fd)", "/dev/shm/pwned"),
    ("numpy-save-to-dev-shm", "import numpy as np\nnp.save('/dev/shm/pwned.npy', np.arange(3))", "/dev/shm/pwned.npy"),
    ("pandas-to-csv-to-dev-shm", "import pandas as pd\npd.DataFrame({'a': [1]}).to_csv('/dev/shm/pwned')",
     "/dev/shm/pwned"),
    ("matplotlib-savefig-to-dev-shm",
     "import matplotlib.pyplot as plt\nplt.plot([1])\nplt.savefig('/dev/shm/pwned.png')",
     "/dev/shm/pwned.png"),
]

DATA_SCIENCE = (
    "import numpy as np, pandas as pd, matplotlib.pyplot as plt, plotly.graph_objects as go\n"
    "import csv, json, math, statistics, collections, itertools, datetime, re, random, io, pathlib\n"
    "from scipy.optimize import curve_fit\n"
    "import warnings\n"
    "x = np.linspace(0, 4, 50)\ny = 2.5 * np.exp(-1.3 * x) + 0.5\n"
    "(a, b, c), _ = curve_fit(lambda t, a, b, c: a * np.exp(-b * t) + c, x, y, p0=(1, 1, 1))\n"
    "df = pd.DataFrame({'x': x, 'y': y, 'g': [i % 3 for i in range(50)]})\n"
    "df.to_csv('/workspace/d.csv', index=False)\nback = pd.read_csv('/workspace/d.csv')\n"
    "with open('/workspace/rows.csv', 'w', newline='') as f:\n    csv.writer(f).writerows([[1, 2], [3, 4]])\n"
    "rows = list(csv.reader(open('/workspace/rows.csv')))\n"
    "means = back.groupby('g')['y'].mean()\n"
    "sub = back[back.x > 1]\nsub['z'] = sub.y * 2\n"
    "with warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n"
    "    pd.to_datetime(['2024-01-01'])\n"
    "plt.plot(back.x, back.y)\nplt.savefig('/workspace/p.png')\nplt.show()\n"
    "go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).show()\n"
    "counts = collections.Counter(itertools.chain('abc', 'ab'))\n"
    "(round(float(a), 3), round(float(b), 3), round(float(c), 3), len(back), len(means), len(sub), rows,\n"
    " counts['a'],"
    " statistics.mean([1, 2, 3]), bool(re.match('a', 'abc')), datetime.date(2024, 1, 2).isoformat(),\n"
    " json.dumps({'k': math.pi > 3}), 0 <= random.random() < 1, pathlib.Path('/workspace/p.png').exists())"
)


def _guarded(attack: str) -> str:
    """The attack, then (in the same job, before any wipe) whether its side effect happened."""
    indented = "\n".join("    " + line for line in attack.splitlines())
    return f"try:\n{indented}\nexcept BaseException:\n    pass{CHECK}"


def _value(result: dict[str, Any]) -> Any:
    assert result["result"] is not None, result
    return ast.literal_eval(result["result"]["repr"])


def _runtime_findings(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f.get("source") == "runtime"]


@pytest.mark.parametrize("attack, target", [pytest.param(a, t, id=i) for i, a, t in VIOLATIONS])
def test_policy_bypasses_are_refused_before_their_side_effect(cluster: Cluster, attack: str, target: str) -> None:
    result = cluster.execute(_guarded(attack))
    assert result["status"] == "policy_violation", result
    findings = _runtime_findings(result)
    assert findings and findings[0]["target"] in target.split("|"), result["findings"]
    assert _value(result) is False  # /workspace/pwned was never created
    follow_up = cluster.execute("print('still here')")  # nothing (PID 1 included) was signalled or broken
    assert follow_up["status"] == "success" and follow_up["stdout"] == "still here\n", follow_up


@pytest.mark.parametrize("attack", [pytest.param(a, id=i) for i, a in READS])
def test_paths_are_resolved_before_a_read_is_judged(cluster: Cluster, attack: str) -> None:
    result = cluster.execute(attack)
    assert result["status"] != "success", result
    assert result["error"]["type"] == "FilesystemPolicyError", result["error"]
    assert "policies/filesystem.json" in result["error"]["message"]
    leaked = json.dumps(result)
    assert "root:" not in leaked and "PENNY_POLICY" not in leaked and "sandbox_runtime" not in result["stdout"]


@pytest.mark.parametrize("attack, path", [pytest.param(a, p, id=i) for i, a, p in WRITES])
def test_nothing_is_written_outside_the_allowed_paths(cluster: Cluster, attack: str, path: str) -> None:
    result = cluster.execute(_guarded(attack).replace(CHECK, f"\nimport pathlib\npathlib.Path({path!r}).exists()"))
    assert _value(result) is False, result
    again = cluster.execute(attack)
    assert again["status"] == "error" and again["error"]["type"] == "FilesystemPolicyError", again
    assert "allowedPaths of policies/filesystem.json" in again["error"]["message"]


def test_the_default_policy_runs_data_science_code_without_a_finding(cluster: Cluster) -> None:
    result = cluster.execute(DATA_SCIENCE)
    assert result["status"] == "success", result["error"]
    assert result["findings"] == []
    a, b, c, rows_read, groups, above, rows, count, mean, matched, day, dumped, rnd, saved = _value(result)
    assert (a, b, c) == (2.5, 1.3, 0.5) and (rows_read, groups, above) == (50, 3, 37)
    assert rows == [["1", "2"], ["3", "4"]] and count == 2 and mean == 2 and matched and day == "2024-01-02"
    assert dumped == '{"k": true}' and rnd and saved
    assert [p["format"] for p in result["plots"]] == ["png", "plotly"]
