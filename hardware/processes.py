"""Starting and stopping the bridge's nodes as processes, and isolating DDS for tests.

What ``rs-bridge`` (:mod:`hardware.bridge`), the ROS tests and ``benchmarks/bridge_latency.py``
share, without rclpy (only the started processes import it):

* :func:`claim_domain_id` / :func:`isolated_ros_env`: a ``ROS_DOMAIN_ID`` no other cooperating
  process on this machine holds (a lock file per id under the temp directory, held until the
  process exits) plus ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, so concurrent test runs never
  see each other's nodes.
* :class:`NodeProcess`: one node in its own process (``python -m <module> --ros-args ...``), its
  output in a log file, stopped with SIGINT then SIGTERM then SIGKILL, never left running by a
  ``with`` block.

The ROS wheels' ``.pth`` bootstrapper re-executes the interpreter once at start-up to set
``LD_LIBRARY_PATH``; it uses ``execve``, so the pid of a started process stays the same, and a
child inherits ``_ROS_WHEELS_BOOTSTRAP_COMPLETE`` from an already bootstrapped parent.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

MAX_DOMAIN_ID = 101
"""Largest ``ROS_DOMAIN_ID`` used (Fast DDS's port mapping is safe for 0..101 on Linux)."""

_HELD: dict[int, IO[bytes]] = {}


def claim_domain_id(rng: random.Random | None = None) -> int:
    """A ``ROS_DOMAIN_ID`` in ``[1, MAX_DOMAIN_ID]`` that no other cooperating process holds.

    The id is held (an exclusive ``flock`` on ``<tmp>/robot_skills_ros_domain_<id>.lock``) until
    this process exits; ids this process already holds are not returned again.

    Raises:
        RuntimeError: when every id is taken.
    """
    rng = rng or random.SystemRandom()
    ids = list(range(1, MAX_DOMAIN_ID + 1))
    rng.shuffle(ids)
    d = Path(tempfile.gettempdir())
    for i in ids:
        if i in _HELD:
            continue
        f = open(d / f"robot_skills_ros_domain_{i}.lock", "ab")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _HELD[i] = f
        return i
    raise RuntimeError(f"every ROS_DOMAIN_ID in 1..{MAX_DOMAIN_ID} is held by another process")


def isolated_ros_env(domain_id: int | None = None,
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for ROS processes confined to this machine and one private domain.

    Args:
        domain_id: the id to use; None claims one (:func:`claim_domain_id`).
        base: the environment to extend (default ``os.environ``).

    Returns:
        A copy of ``base`` with ``ROS_DOMAIN_ID``, ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``,
        ``RMW_IMPLEMENTATION=rmw_fastrtps_cpp`` (unless set) and ``PYTHONUNBUFFERED=1``.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(claim_domain_id() if domain_id is None else int(domain_id))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ros_args(params_file: str | os.PathLike | None = None,
             params: Mapping[str, object] | None = None,
             node_name: str | None = None) -> list[str]:
    """``--ros-args`` for a node: a parameters file, single parameters (``-p k:=v``, values
    written as YAML scalars / flow lists), and a node-name remap."""
    import yaml

    out = ["--ros-args"]
    if node_name:
        out += ["-r", f"__node:={node_name}"]
    if params_file:
        out += ["--params-file", str(params_file)]
    for k, v in (params or {}).items():
        text = yaml.safe_dump(v, default_flow_style=True, width=1 << 20).strip()
        text = text.removesuffix("...").strip()  # the document-end marker of a bare scalar
        out += ["-p", f"{k}:={text}"]
    return out


class NodeProcess:
    """One node in its own process; ``with NodeProcess(...) as p:`` stops it on exit.

    Args:
        module: the Python module to run (``python -m module``), e.g. ``"sim.ros_twin"``.
        args: its command-line arguments (usually :func:`ros_args`).
        env: the environment (usually :func:`isolated_ros_env`).
        log_path: where stdout and stderr go (default: a temporary file).
        name: a label for messages.
        cwd: working directory (default: the current one).
    """

    def __init__(self, module: str, args: Sequence[str] = (), *, env: Mapping[str, str],
                 log_path: str | os.PathLike | None = None, name: str | None = None,
                 cwd: str | os.PathLike | None = None) -> None:
        self.module = module
        self.args = list(args)
        self.env = dict(env)
        self.name = name or module
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix=f"{self.name.replace('/', '_')}.", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> NodeProcess:
        """Start the process (its own process group). Returns ``self``."""
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.cwd,
                                         start_new_session=True)
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int | None:
        """The process id, or None before :meth:`start`."""
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """Everything the process printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> bool:
        """Wait until ``text`` appears in the log; False on timeout or when the process exits
        first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            if not self.running():
                return text in self.log()
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL the process (a crash, for fault tests) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL, each after ``timeout / 2`` seconds; returns the
        exit code (None if never started)."""
        p = self.proc
        if p is None:
            return None
        for sig, wait in ((signal.SIGINT, timeout / 2), (signal.SIGTERM, timeout / 2)):
            if p.poll() is not None:
                break
            try:
                p.send_signal(sig)
                p.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        if p.poll() is None:
            p.kill()
            p.wait()
        return p.returncode

    def __enter__(self) -> NodeProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_node(make_node: Callable[[], Any], label: str,
             argv: Sequence[str] | None = None) -> int:
    """Run one rclpy node until SIGINT/SIGTERM, the ``main`` of every node the bridge starts.

    Args:
        make_node: builds the node after ``rclpy.init`` (reads its parameters from ``argv``'s
            ``--ros-args``).
        label: the node's name in error messages (``"sim twin"``, ``"executor node"``).
        argv: command-line arguments for ``rclpy.init`` (default ``sys.argv``).

    Returns:
        0 on a clean shutdown, 2 when rclpy is missing or the node could not start (the reason on
        stderr).
    """
    try:
        import rclpy
        from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    except ImportError as exc:
        print(f"{label}: needs rclpy (pip install -e '.[ros]'): {exc}", file=sys.stderr)
        return 2
    rclpy.init(args=list(sys.argv if argv is None else argv))  # SIGINT/SIGTERM shut it down
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as e:  # noqa: BLE001 - a node that cannot start says why and exits 2
        print(f"{label}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
