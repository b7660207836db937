"""Shared pieces of the benchmarks: a real `patron serve`, memory readings, percentiles."""

from __future__ import annotations

import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def patron_command(*args: str) -> list[str]:
    """The installed CLI, run with this interpreter."""
    return [sys.executable, "-c", "from patron.cli.main import main; main()", *args]


def _repo_path() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    extra = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{extra}" if extra else root


def run_cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        patron_command(*args), capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise RuntimeError(f"patron {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vm_hwm_kib(pid: int) -> int | None:
    """Peak resident set size of a live process (``VmHWM``), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds a live process has used, threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / tick, total / tick


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Where the machine's CPU went during a run: the server, the clients, everything else.

    Other processes on the machine (other sessions' tests) take CPU from the benchmark;
    ``other_share`` says how much, so a figure measured on a busy machine reads as such.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server0 = process_cpu_s(server_pid)
        self.busy0, self.total0 = system_cpu_s()
        self.parent0 = own_cpu_s()

    def finish(self, clients_cpu_s: float) -> dict[str, float]:
        server = process_cpu_s(self.server_pid) - self.server0
        busy, total = system_cpu_s()
        busy -= self.busy0
        total -= self.total0
        parent = own_cpu_s() - self.parent0
        other = max(0.0, busy - server - clients_cpu_s - parent)
        return {
            "server_cpu_s": round(server, 2),
            "server_cores": round(server / (total / (os.cpu_count() or 1)), 2),
            "clients_cores": round(clients_cpu_s / (total / (os.cpu_count() or 1)), 2),
            "machine_busy_share": round(busy / total, 3),
            "other_processes_share": round(other / total, 3),
        }


def own_peak_rss_mib() -> float:
    """This process's peak RSS (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_dir(name: str) -> Path:
    path = RESULTS / "work" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@dataclass
class Server:
    """`patron serve` on a fresh store in ``workdir``, with a write key."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    key: str = ""
    peak_rss_kib: int = 0
    _watch: threading.Thread | None = None
    _stop_watch: threading.Event = field(default_factory=threading.Event)

    @property
    def store(self) -> Path:
        return self.workdir / "patron.duckdb"

    def start(self) -> Server:
        self.key = json.loads(
            run_cli("keys", "create", "--name", "bench", "--scope", "write", "--json", "--store", str(self.store))
        )["key"]
        with open(self.workdir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                patron_command("serve", "--store", str(self.store), "--port", str(self.port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _repo_path()},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"patron serve exited: {(self.workdir / 'server.log').read_text()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("patron serve did not start within 60 s")
        self._watch = threading.Thread(target=self._watch_memory, daemon=True)
        self._watch.start()
        return self

    def profile(self, out: Path, duration: float) -> subprocess.Popen[bytes]:
        """Sample the server with py-spy (collapsed stacks in ``out``), if py-spy is installed."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        return subprocess.Popen(
            [spy, "record", "-p", str(self.pid), "-d", str(int(duration)), "-r", "200",
             "--threads", *os.environ.get("BENCH_PYSPY_ARGS", "").split(), "-f", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _watch_memory(self) -> None:
        assert self.process
        while not self._stop_watch.wait(0.5):
            self._sample()

    def _sample(self) -> None:
        if self.process is not None:
            hwm = vm_hwm_kib(self.process.pid)
            if hwm:
                self.peak_rss_kib = max(self.peak_rss_kib, hwm)

    @property
    def pid(self) -> int:
        assert self.process
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM, wait; the peak RSS is read just before."""
        self._sample()
        self._stop_watch.set()
        assert self.process
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def store_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.workdir.glob("patron.duckdb*"))


def stored_event_count(store: Path) -> int:
    """Events in the store, counted by the real CLI after the server has stopped."""
    return int(json.loads(run_cli("events", "count", "--json", "--store", str(store)))["total"])


def basic_auth(key: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "os": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "CPU max MHz"):
                info[key.strip()] = value.strip()
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["distro"] = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return info


class KeepAlivePoster:
    """POSTs on one keep-alive loopback connection, reconnecting after a failure.

    ``post`` returns ``(status, payload)``, or ``None`` when the connection broke (the
    caller counts an error; the next call uses a fresh connection).
    """

    def __init__(self, port: int, headers: dict[str, str], timeout: float) -> None:
        self.port = port
        self.headers = headers
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, path: str, body: bytes) -> tuple[int, bytes] | None:
        try:
            self.conn.request("POST", path, body, self.headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            return None

    def close(self) -> None:
        self.conn.close()
