"""`imagen console`: the settings read once, the app built once, served on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import errno
import shutil
import socket
import tempfile
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from imagen.core.local import DEFAULT_PORT_BASE, HOST, LocalPorts

from .. import app as cli
from .. import render
from . import logs, previews
from .app import Console, create_app
from .objects import Objects
from .queries import JobReads
from .security import Guard, new_token

PORTS_TRIED = 10  # the next ones when the port is taken, as Jupyter does


@dataclass(frozen=True)
class Settings:
    port: int
    open_browser: bool
    triton_url: str  # "" where Triton cannot be reached from here


def settings(port: int, open_browser: bool, local: bool, env: Mapping[str, str]) -> Settings:
    """From the command line and the environment, once: Triton is the local stack's, or TRITON_URL."""
    triton = env.get("TRITON_URL", "")
    if local and not triton:
        triton = f"{HOST}:{LocalPorts(int(env.get('IMAGEN_PORT_BASE', DEFAULT_PORT_BASE))).triton}"
    return Settings(port, open_browser, triton)


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (only): the port asked, else one of the next few; 0: any."""
    for candidate in [port] if port == 0 else range(port, port + PORTS_TRIED):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        sock.listen(128)
        return sock
    raise cli.CliError(f"ports {port} to {port + PORTS_TRIED - 1} are taken; pass --port")


def run(backend: cli.Backend, s: Settings) -> int:
    previews.configure()
    sock = bind(s.port)
    port = int(sock.getsockname()[1])
    guard = Guard(port, new_token())
    workdir = Path(tempfile.mkdtemp(prefix="imagen_console_"))
    reads = JobReads(backend.jobs.db, backend.t.names.jobs_collection)
    console = Console(backend, reads, Objects(backend.gcs, workdir / "objects"), workdir, s.triton_url)
    app = create_app(console, guard)
    target = backend.t
    logs.console_started(port, target.names.project, target.bucket, target.local)
    render.say(f"imagen console: open {guard.url()}")
    render.say("(the token in that URL is this run's; Ctrl-C stops the console)")
    if s.open_browser:
        webbrowser.open(guard.url())
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, lifespan="off")
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
