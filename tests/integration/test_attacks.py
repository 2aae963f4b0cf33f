"""Attacks on every guarantee; each asserts that the forbidden side effect did not happen.

Two layers are attacked separately:
- the container, the security boundary: on `open_cluster` (the import and filesystem policies are off, so
  `import os`, `socket` and `ctypes` work), the attacks go for the host, the service and the network;
- the policy layer in front of it: on `cluster` (the default policies), the attacks try to get around the
  import policy and then use what they got.
After every resource bomb the service must still serve.
"""

from __future__ import annotations

import ast
import hashlib
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import redis
import requests

from core.isolation import Tier
from tests.integration.conftest import CANARY, Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]

SERVICE_PROCESSES = ("redis-server", "celery", "gunicorn", "dockerd", "containerd", "api.serve", "workers.serve",
                     "pytest", "flower")


def value(result: dict[str, Any]) -> Any:
    assert result["result"] is not None, result
    return ast.literal_eval(result["result"]["repr"])


def everything(result: dict[str, Any]) -> str:
    """All a job sent back, as one string (to look for what must never leak)."""
    return json.dumps(result)


def assert_next_job_works(cluster: Cluster) -> None:
    result = cluster.execute("print('still here')")
    assert result["status"] == "success" and result["stdout"] == "still here\n", result


def host_address() -> str:
    """This machine's address on its default route (what a sandbox would have to reach the host by)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the route's source address
        return str(probe.getsockname()[0])


@pytest.fixture
def host_canary_file() -> Iterator[Path]:
    path = Path(f"/tmp/penny-canary-{uuid.uuid4().hex}.txt")
    path.write_text(CANARY)
    yield path
    path.unlink()


# --- the host's secrets, processes and the service's environment (container layer) ---------------------------

def test_host_secrets_and_the_services_environment_stay_out_of_reach(open_cluster: Cluster,
                                                                     host_canary_file: Path) -> None:
    result = open_cluster.execute(
        "import os, glob\n"
        "seen = [repr(dict(os.environ))]\n"
        "for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/task/*/environ'):\n"
        "    try:\n        seen.append(open(path, 'rb').read().decode(errors='replace'))\n"
        "    except OSError:\n        pass\n"
        f"for path in ['{host_canary_file}', '/proc/1/root{host_canary_file}', '/host{host_canary_file}',\n"
        "             '/etc/shadow', '/root/.bash_history', '/var/run/secrets/kubernetes.io/serviceaccount/token']:\n"
        "    try:\n        seen.append(open(path, errors='replace').read())\n"
        "    except OSError:\n        pass\n"
        "for root in ['/tmp', '/root', '/home', '/mnt', '/srv', '/run', '/var/run']:\n"
        "    for top, _, files in os.walk(root):\n"
        "        for name in files:\n"
        "            try:\n                seen.append(open(os.path.join(top, name), errors='replace').read(4096))\n"
        "            except OSError:\n                pass\n"
        "print('\\n'.join(seen))\n"
        "sorted(k for k in os.environ if k.startswith(('REDIS', 'PENNY_API', 'PENNY_ADMIN', 'DOCKER', 'PENNY_TEST')))")
    assert result["status"] == "success", result["error"]
    assert CANARY not in everything(result)
    assert value(result) == []


def test_the_hosts_processes_are_invisible(open_cluster: Cluster) -> None:
    result = open_cluster.execute(
        "import os\n"
        "cmdlines = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n        cmdlines.append(open(f'/proc/{pid}/cmdline', 'rb').read().decode(errors='replace'))\n"
        "    except OSError:\n        pass\n"
        "(len(cmdlines), cmdlines)")
    count, cmdlines = value(result)
    assert count <= 5, cmdlines  # the runtime, its light parent, the kernel, maybe the next kernel
    assert not [c for c in cmdlines if any(name in c for name in SERVICE_PROCESSES)]


# --- the Docker socket, Redis, the API and the network (container layer) ------------------------------------

def test_the_docker_socket_cannot_be_reached_to_start_a_container(open_cluster: Cluster) -> None:
    tag = uuid.uuid4().hex
    result = open_cluster.execute(
        "import socket, json\n"
        f"payload = json.dumps({{'Image': 'penny-sandbox:latest', 'Labels': {{'penny.attack': '{tag}'}}}}).encode()\n"
        "request = (b'POST /containers/create HTTP/1.1\\r\\nHost: docker\\r\\nContent-Type: application/json\\r\\n'\n"
        "           b'Content-Length: ' + str(len(payload)).encode() + b'\\r\\n\\r\\n' + payload)\n"
        "outcomes = []\n"
        "for path in ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock']:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    try:\n        s.connect(path); s.sendall(request); outcomes.append(s.recv(100))\n"
        "    except OSError as exc:\n        outcomes.append(type(exc).__name__)\n"
        f"for host in ['127.0.0.1', '172.17.0.1', '{host_address()}']:\n"
        "    for port in (2375, 2376):\n"
        "        try:\n"
        "            c = socket.create_connection((host, port), timeout=1); c.sendall(request)\n"
        "            outcomes.append(c.recv(100))\n"
        "        except OSError as exc:\n            outcomes.append(type(exc).__name__)\n"
        "outcomes")
    outcomes = value(result)
    assert all(isinstance(outcome, str) for outcome in outcomes), outcomes  # every attempt failed
    created = docker.from_env().containers.list(all=True, sparse=True, filters={"label": f"penny.attack={tag}"})
    assert created == []


def test_redis_and_the_api_cannot_be_reached_from_a_sandbox(open_cluster: Cluster) -> None:
    tag = uuid.uuid4().hex
    redis_port = int(open_cluster.stack.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    api_port = int(open_cluster.url.rsplit(":", 1)[1])
    marker_code = f"print('{tag}')"
    body = json.dumps({"code": marker_code})
    result = open_cluster.execute(
        "import socket\n"
        f"resp = b'*3\\r\\n$3\\r\\nSET\\r\\n$38\\r\\npwned:{tag}\\r\\n$1\\r\\n1\\r\\n'\n"
        f"post = (b'POST /api/v1/jobs HTTP/1.1\\r\\nHost: api\\r\\nContent-Type: application/json\\r\\n'\n"
        f"        b'Content-Length: {len(body)}\\r\\n\\r\\n' + {body!r}.encode())\n"
        "outcomes = []\n"
        f"for host in ['127.0.0.1', '172.17.0.1', '{host_address()}', 'host.docker.internal']:\n"
        f"    for port, payload in (({redis_port}, resp), ({api_port}, post), (6379, resp), (3003, post)):\n"
        "        try:\n"
        "            c = socket.create_connection((host, port), timeout=1); c.sendall(payload)\n"
        "            outcomes.append(c.recv(100))\n"
        "        except OSError as exc:\n            outcomes.append(type(exc).__name__)\n"
        "outcomes")
    assert all(isinstance(outcome, str) for outcome in value(result))
    assert redis.Redis.from_url(open_cluster.stack.env["REDIS_URL"]).exists(f"pwned:{tag}") == 0
    audit = requests.get(f"{open_cluster.url}/api/v1/audit", params={"limit": 1000}, timeout=30).json()
    marker_hash = hashlib.sha256(marker_code.encode()).hexdigest()
    assert not [r for r in audit["records"] if r["codeSha256"] == marker_hash]  # the API never got the job


@pytest.mark.parametrize("target", [("169.254.169.254", 80), ("1.1.1.1", 53), ("8.8.8.8", 443), ("10.0.0.1", 80),
                                    ("192.168.1.1", 80), ("172.17.0.1", 22)])
def test_no_address_outside_the_sandbox_answers(open_cluster: Cluster, target: tuple[str, int]) -> None:
    result = open_cluster.execute(
        "import socket\n"
        f"try:\n    socket.create_connection({target!r}, timeout=2)\n    reached = True\n"
        "except OSError:\n    reached = False\n"
        "try:\n    socket.getaddrinfo('example.com', 80)\n    resolved = True\n"
        "except OSError:\n    resolved = False\n"
        "(reached, resolved, sorted(n for _, n in socket.if_nameindex()))")
    assert value(result) == (False, False, ["lo"])


# --- root, capabilities and the kernel's knobs (container layer) -------------------------------------------

def test_root_and_capabilities_cannot_be_gained(open_cluster: Cluster, tier: Tier) -> None:
    host_name = socket.gethostname()
    result = open_cluster.execute(
        "import os, ctypes, stat, socket, resource\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "attempts = {}\n"
        "def attempt(name, fn):\n"
        "    try:\n        fn()\n        attempts[name] = 'succeeded'\n"
        "    except Exception as exc:\n        attempts[name] = type(exc).__name__\n"
        "attempt('setuid', lambda: os.setuid(0))\n"
        "attempt('setgid', lambda: os.setgid(0))\n"
        "attempt('setgroups', lambda: os.setgroups([0]))\n"
        "attempt('chroot', lambda: os.chroot('/workspace'))\n"
        "attempt('mknod', lambda: os.mknod('/workspace/sda', stat.S_IFBLK | 0o600, os.makedev(8, 0)))\n"
        "attempt('open_device', lambda: open('/workspace/sda', 'rb').read(1))\n"
        "attempt('sethostname', lambda: socket.sethostname('pwned'))\n"
        "attempt('proc_sys', lambda: open('/proc/sys/kernel/hostname', 'w').write('pwned'))\n"
        "attempt('raise_fsize', lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (-1, -1)))\n"
        "attempt('raise_nproc', lambda: resource.setrlimit(resource.RLIMIT_NPROC, (-1, -1)))\n"
        "mounted = libc.mount(b'none', b'/workspace', b'tmpfs', 0, None)\n"
        "unshared = libc.unshare(0x10000000)\n"  # CLONE_NEWUSER: a user namespace would give capabilities
        "status = {l.split(':')[0]: l.split(':')[1].strip() for l in open('/proc/self/status') if ':' in l}\n"
        "(attempts, mounted, unshared, os.getuid(), os.geteuid(), os.getgid(), status['CapEff'], status['CapPrm'],\n"
        " str(libc.prctl(39, 0, 0, 0, 0)), open('/proc/mounts').read().count(' /workspace '), socket.gethostname(),\n"
        " os.path.exists('/workspace/sda'))")
    attempts, mounted, unshared, uid, euid, gid, cap_eff, cap_prm, no_new_privs, mounts, name, node = value(result)
    # gVisor lets the node be made (its tmpfs does not ask for CAP_MKNOD) but it leads to no device (ENXIO), and
    # its RLIMIT_NPROC is unlimited already (and not enforced): raising it to unlimited changes nothing.
    gained = ["mknod", "raise_nproc"] if tier is Tier.GVISOR else []
    assert [k for k, v in attempts.items() if v == "succeeded"] == gained, attempts
    assert (mounted, unshared) == (-1, -1)
    assert (uid, euid, gid) == (1000, 1000, 1000)
    assert int(cap_eff, 16) == 0 and int(cap_prm, 16) == 0 and no_new_privs == "1"
    assert mounts == 1 and name == "sandbox" and node is (tier is Tier.GVISOR)
    assert socket.gethostname() == host_name


def test_nothing_outside_the_writable_paths_can_be_written(open_cluster: Cluster) -> None:
    targets = ["/pwned", "/etc/pwned", "/usr/lib/pwned", "/opt/penny/lib/pwned.py", "/opt/penny/sandbox_runtime/x.py",
               "/var/pwned", "/home/pwned", "/root/pwned", "/opt/penny/site/pwned.py",
               "/opt/penny/site/current/pwned.py", "/sys/kernel/pwned"]
    attack = (
        "import os\n"
        f"targets = {targets!r}\n"
        "for target in targets:\n"
        "    try:\n        open(target, 'w').write('x')\n"
        "    except OSError:\n        pass\n"
        "[t for t in targets if os.path.exists(t)]")
    assert value(open_cluster.execute(attack)) == []
    # Another sandbox of the pool: the image's layers are unchanged too.
    probe = open_cluster.execute(f"import os\n[t for t in {targets!r} if os.path.exists(t)]")
    assert value(probe) == []


# --- symlinks aimed at the host side (container layer) -----------------------------------------------------

def test_symlinks_cannot_steer_the_worker_to_host_paths(open_cluster: Cluster, tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("intact")
    passwd_before = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    session = requests.post(f"{open_cluster.url}/api/v1/sessions", json={}, timeout=120).json()["sessionId"]
    planted = open_cluster.execute(
        "import os\n"
        "results = []\n"
        f"for link, target in [('/opt/penny/site/tabulate', '{keep}'),\n"
        "                     ('/opt/penny/site/evil.pth', '/etc/passwd'),\n"
        f"                     ('/workspace/site', '{keep}'), ('/workspace/root', '/'),\n"
        "                     ('/workspace/loop', '/workspace'), ('/tmp/passwd', '/etc/passwd')]:\n"
        "    try:\n        os.symlink(target, link)\n        results.append(link)\n"
        "    except OSError:\n        pass\n"
        "results", sessionId=session)
    assert value(planted) == ["/workspace/site", "/workspace/root", "/workspace/loop", "/tmp/passwd"]
    # The worker now installs into this sandbox's package dir, measures its disk, and finally removes it all.
    installed = requests.post(f"{open_cluster.url}/api/v1/packages/install",
                              json={"sessionId": session, "packages": ["tabulate"]}, timeout=300)
    assert installed.status_code == 200 and installed.json()["failed"] == [], installed.text
    measured = open_cluster.execute("import tabulate\n1", sessionId=session)
    assert measured["status"] == "success" and measured["metrics"]["diskBytes"] < 1024 * 1024
    assert requests.delete(f"{open_cluster.url}/api/v1/sessions/{session}", timeout=30).status_code == 204
    assert (keep / "precious.txt").read_text() == "intact"
    assert sorted(p.name for p in keep.iterdir()) == ["precious.txt"]
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd_before


def test_the_wipe_between_jobs_does_not_follow_symlinks(open_cluster: Cluster) -> None:
    before = value(open_cluster.execute("import os\nsorted(os.listdir('/opt/penny/lib'))[:50]"))
    for _ in range(6):  # on every sandbox of the pool
        open_cluster.execute("import os\nos.symlink('/opt/penny/lib', '/workspace/lib')\n"
                             "os.symlink('/opt/penny', '/tmp/penny')\nos.symlink('/', '/dev/shm/root')")
    for _ in range(6):
        probe = open_cluster.execute("import os, numpy\n(sorted(os.listdir('/opt/penny/lib'))[:50], "
                                     "os.listdir('/workspace'),\n"
                                     " [n for n in os.listdir('/tmp') if not n.startswith('.penny-mplconfig')])")
        assert value(probe) == (before, [], [])


# --- resource bombs: the service still serves (container layer) --------------------------------------------

@pytest.mark.parametrize("bomb", [
    pytest.param("import threading, time\nthreads = []\ntry:\n    while True:\n"
                 "        t = threading.Thread(target=time.sleep, args=(60,), daemon=True)\n"
                 "        t.start()\n        threads.append(t)\nexcept RuntimeError:\n    pass\nlen(threads)",
                 id="threads"),
    pytest.param("handles = []\ntry:\n    while True:\n        handles.append(open('/dev/null'))\n"
                 "except OSError:\n    pass\nlen(handles)", id="file-descriptors"),
    pytest.param("import os\nfor path in ('/dev/shm/fill', '/tmp/fill', '/workspace/fill'):\n"
                 "    try:\n        with open(path, 'wb') as f:\n"
                 "            while True:\n                f.write(b'x' * 1024 * 1024)\n"
                 "    except OSError:\n        pass\n0", id="disk"),
    pytest.param("import threading\ndef spin():\n    while True:\n        pass\n"
                 "for _ in range(8):\n    threading.Thread(target=spin, daemon=True).start()\nspin()",
                 id="cpu-threads"),
    pytest.param("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                 "        while True:\n            time.sleep(1)\n    os._exit(0)\n0", id="daemon"),
])
def test_after_a_resource_bomb_the_service_still_serves(open_cluster: Cluster, bomb: str) -> None:
    result = open_cluster.execute(bomb, timeout=3000)
    assert result["status"] in ("success", "timeout", "error"), result
    if result["status"] == "success":
        assert value(result) < 2000  # the pids limit, the fd limit or a full tmpfs stopped it
    for _ in range(6):  # more than the pool: every sandbox, including the one that ran the bomb
        assert_next_job_works(open_cluster)
        leftovers = open_cluster.execute(
            # Other than the runtime (PID 1), its light parent (sandbox_runtime.light_parent) and this kernel.
            "import os\nprocs = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())\n"
            "         and open(f'/proc/{p}/comm').read() != 'penny-light\\n']\n"
            "(procs, os.listdir('/workspace'), os.listdir('/dev/shm'))")
        assert value(leftovers) == ([], [], [])


# --- the import policy, attacked (policy layer, default policies) ------------------------------------------

WALK = ("cw = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]\n"
        "os_module = cw()._module.sys.modules['os']\n")
CHECK = "\nimport pathlib\npathlib.Path('/workspace/pwned').exists()"


def _guarded(attack: str) -> str:
    """The attack, then (in the same job, so before any wipe) whether its side effect happened."""
    indented = "\n".join("    " + line for line in attack.splitlines())
    return f"try:\n{indented}\nexcept Exception:\n    pass{CHECK}"


@pytest.mark.parametrize("attack, target", [
    pytest.param(WALK + "os_module.system('touch /workspace/pwned')", "os.system", id="subclasses-walk"),
    pytest.param("__builtins__['__import__']('os').system('touch /workspace/pwned')", "os",
                 id="builtins-dict"),
    pytest.param("import importlib\nimportlib.import_module('os').system('touch /workspace/pwned')", "importlib",
                 id="importlib"),
    pytest.param(WALK + "importlib = os_module.sys.modules['importlib']\n"
                 "importlib.import_module('subprocess').run(['touch', '/workspace/pwned'])", "subprocess.Popen",
                 id="importlib-via-sys-modules"),
    pytest.param("eval(\"__import__('os').system('touch /workspace/pwned')\")", "eval", id="eval"),
    pytest.param("exec(\"import os\\nos.system('touch /workspace/pwned')\")", "exec", id="exec"),
    pytest.param("code = compile(\"import os\", 'x', 'exec')", "compile", id="compile"),
    pytest.param("import ctypes\nctypes.CDLL(None).system(b'touch /workspace/pwned')", "ctypes", id="ctypes"),
    pytest.param(WALK + "ctypes = cw()._module.__builtins__['__import__']('ctypes')\n"
                 "ctypes.CDLL(None).system(b'touch /workspace/pwned')", "ctypes.dlopen", id="ctypes-via-real-import"),
    pytest.param(WALK + "os_module.sys.modules['json'] = os_module\nimport json\n"
                 "json.system('touch /workspace/pwned')", "os.system", id="sys-modules-tampering"),
    pytest.param(WALK + "__builtins__['__import__'] = cw()._module.__builtins__['__import__']\n"
                 "import subprocess\nsubprocess.run(['touch', '/workspace/pwned'])", "subprocess.Popen",
                 id="import-hook-replaced"),
    pytest.param("todo = [__builtins__['__import__']]\nwhile todo:\n    for cell in todo.pop().__closure__ or ():\n"
                 "        if isinstance(cell.cell_contents, frozenset):\n"
                 "            cell.cell_contents = frozenset()\n"
                 "        elif callable(cell.cell_contents) and hasattr(cell.cell_contents, '__closure__'):\n"
                 "            todo.append(cell.cell_contents)\n"
                 "import os\nos.system('touch /workspace/pwned')", "os", id="import-hook-closure-patched"),
    pytest.param(WALK + "g = __builtins__['__import__'].__globals__\n"
                 "g['PROCESS_EVENTS'] = g['DENIED_EVENTS'] = frozenset()\n"
                 "os_module.system('touch /workspace/pwned')", "os.system", id="guard-globals-patched"),
    pytest.param("import json\nreal = json.dumps.__globals__['__builtins__']\n"
                 "real['__import__']('os').system('touch /workspace/pwned')", "os.system", id="library-globals"),
    pytest.param("def g():\n    yield 1\nframe = g().gi_frame\n"
                 "frame.f_back.f_globals['__builtins__']['__import__']('os').system('touch /workspace/pwned')",
                 "object.__getattr__ gi_frame", id="generator-frame"),
    pytest.param("try:\n    1/0\nexcept Exception as e:\n    frame = e.__traceback__.tb_frame\n"
                 "frame.f_back.f_globals['__builtins__']['__import__']('os').system('touch /workspace/pwned')",
                 "object.__getattr__ tb_frame", id="traceback-frame"),
    pytest.param(WALK + "import threading\nt = threading.Thread(target=os_module.system, "
                 "args=('touch /workspace/pwned',))\nt.start()\nt.join()", "os.system", id="thread"),
    pytest.param(WALK + "import pandas\npandas.Series(['touch /workspace/pwned']).apply(os_module.system)",
                 "os.system", id="through-pandas"),
    pytest.param("import timeit\ntimeit.timeit(\"__import__('os').system('touch /workspace/pwned')\", number=1)",
                 "os.system", id="timeit-exec"),
])
def test_import_policy_escapes_are_stopped_before_their_side_effect(cluster: Cluster, attack: str,
                                                                    target: str) -> None:
    result = cluster.execute(_guarded(attack))
    assert result["status"] == "policy_violation", result
    runtime = [f for f in result["findings"] if f.get("source") == "runtime"]
    assert runtime and runtime[0]["target"] == target, result["findings"]
    assert value(result) is False  # /workspace/pwned was never created


def test_blocked_paths_are_refused_with_a_permission_error_naming_the_policy(cluster: Cluster) -> None:
    result = cluster.execute("import pathlib\npathlib.Path('/etc/passwd').read_text()")
    assert result["status"] == "error" and result["error"]["type"] == "FilesystemPolicyError"
    assert "policies/filesystem.json" in result["error"]["message"] and "root:" not in everything(result)


def test_numpy_pandas_and_matplotlib_work_under_the_default_policy(cluster: Cluster) -> None:
    result = cluster.execute(
        "import numpy as np, pandas as pd, matplotlib.pyplot as plt, json, math\n"
        "df = pd.DataFrame({'x': np.arange(10), 'y': np.sin(np.arange(10))})\n"
        "df.to_csv('/workspace/d.csv', index=False)\n"
        "back = pd.read_csv('/workspace/d.csv')\n"
        "plt.plot(back.x, back.y)\n"
        "plt.savefig('/workspace/p.png')\n"
        "plt.show()\n"
        "(len(back), round(float(back.y.sum()), 6), math.isfinite(float(np.linalg.norm(df.values))))")
    assert result["status"] == "success", result["error"]
    assert result["findings"] == []
    assert value(result) == (10, round(float(sum(__import__("math").sin(i) for i in range(10))), 6), True)
    assert [p["format"] for p in result["plots"]] == ["png"]
