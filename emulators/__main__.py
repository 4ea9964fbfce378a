"""python -m emulators start|stop|status|env|run|token — manage the local stack."""

from __future__ import annotations

import argparse
import signal
import threading

from .settings import StackSettings
from .stack import Stack


def print_env(s: StackSettings) -> None:
    for key, value in s.client_env().items():
        print(f"export {key}={value}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "env", "run", "token"])
    parser.add_argument("email", nargs="?", help="token: the caller it names (an email)")
    args = parser.parse_args()
    s = StackSettings.from_env()
    if args.command == "token":  # a bearer token for the local HTTP API
        if not args.email or "@" not in args.email:
            parser.error("token needs the caller's email: python -m emulators token you@example.com")
        print(s.api_token(args.email))
        return
    stack = Stack(s)
    if args.command == "start":
        stack.up()
        print_env(s)
    elif args.command == "stop":
        stack.down()
    elif args.command == "status":
        running = stack.running()
        for name, pid in running.items():
            print(f"{name:24} pid {pid}")
        if not running:
            print("the local stack is not running")
    elif args.command == "env":
        print_env(s)
    else:  # run: start, print the environment, stay up until Ctrl-C or SIGTERM
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        # Ctrl-C stops the stack even when started from a script or a background job, which
        # hand their children SIGINT already ignored (Python then installs no handler of its own).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            stack.up()
            print("\n# The stack is up. Paste these lines into another shell:")
            print_env(s)
            print(f"# Upload: gcloud storage cp photo.jpg gs://{s.bucket}/upscale/photo.jpg")
            print("#     or: TOKEN=$(python -m emulators token you@example.com)")
            print(
                f'#         curl -H "Authorization: Bearer $TOKEN" -F file=@photo.jpg '
                f"{s.api_url}/api/v1/images/upscale"
            )
            print(f"# Logs:   {s.logs}/   Stop: Ctrl-C", flush=True)
            stop.wait()
        except (KeyboardInterrupt, BrokenPipeError):
            pass  # Ctrl-C; or whatever read our stdout (`| tee`) is gone
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
            stack.down()


if __name__ == "__main__":
    main()
