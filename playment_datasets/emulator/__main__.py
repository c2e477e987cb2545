"""Run the Playment emulator from a terminal until Ctrl-C.

    python -m playment_datasets.emulator --jobs 200 --latency-ms 20 --faults "503=0.05;seed=1"

It prints the base URL, the API key, the project id and the batch id to pull.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from playment_datasets.errors import PlaymentDatasetsError

__all__ = ["add_emulator_arguments", "run_emulator_cli"]


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator options to ``parser`` (shared with ``playment-datasets emulator``)."""
    parser.add_argument("--jobs", type=int, default=50, help="jobs in the batch (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--kinds", default=None,
                        help="comma-separated result kinds to generate (default: all)")
    parser.add_argument("--port", type=int, default=0,
                        help="API port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--storage-port", type=int, default=0,
                        help="storage port on 127.0.0.2 (default: a free port)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay added to every request, in milliseconds")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help='fault plan, e.g. "500=0.1,429=0.05,reset=0.02;seed=7;only=job"')
    parser.add_argument("--page-size", type=int, default=100,
                        help="jobs per batch page (default 100)")
    parser.add_argument("--api-key", default="emulator-api-key",
                        help="API key the emulator accepts (default emulator-api-key)")
    parser.add_argument("--json", action="store_true",
                        help="print the connection details as one JSON object")


def run_emulator_cli(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
                     stop_event: threading.Event | None = None) -> int:
    """Start an emulator, print how to reach it, serve until Ctrl-C or SIGTERM.

    Returns the exit code: 0 after a clean stop, 1 when the emulator cannot start,
    2 for a usage error. ``stop_event`` lets a caller stop it from another thread.

    Example:
        >>> import threading
        >>> stop = threading.Event(); stop.set()      # stop as soon as it is up
        >>> import io; out = io.StringIO()
        >>> run_emulator_cli(["--jobs", "0"], stdout=out, stop_event=stop)  # doctest: +SKIP
        0
    """
    out = sys.stdout if stdout is None else stdout
    parser = argparse.ArgumentParser(
        prog="python -m playment_datasets.emulator",
        description="Serve a generated Playment batch on loopback until Ctrl-C.")
    add_emulator_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage message
        return exc.code if isinstance(exc.code, int) else 2

    from playment_datasets.emulator.server import Emulator

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()] if args.kinds else None
    try:
        emulator = Emulator(jobs=args.jobs, seed=args.seed, kinds=kinds, api_key=args.api_key,
                            page_size=args.page_size, latency_ms=args.latency_ms,
                            faults=args.faults, port=args.port,
                            storage_port=args.storage_port)
    except (PlaymentDatasetsError, ValueError) as exc:
        _say(sys.stderr, f"error: {exc}")
        return 2
    except OSError as exc:
        _say(sys.stderr, f"error: cannot start the emulator: {exc}")
        return 1

    stop = threading.Event() if stop_event is None else stop_event
    previous = _install_sigterm(stop)
    try:
        with emulator:
            _print_details(emulator, out, as_json=args.json)
            while not stop.wait(0.2):
                pass
    except KeyboardInterrupt:  # Ctrl-C is the normal way to stop; the with-block cleaned up
        pass
    finally:
        _restore_sigterm(previous)
    if not args.json:
        _say(out, "Emulator stopped.")
    return 0


def _print_details(emulator: object, out: TextIO, *, as_json: bool) -> None:
    from playment_datasets.emulator.server import Emulator

    assert isinstance(emulator, Emulator)
    details = {
        "base_url": emulator.base_url,
        "storage_url": emulator.storage_url,
        "api_key": emulator.api_key,
        "project_id": emulator.project_id,
        "batch_id": emulator.batch_id,
        "jobs": len(emulator.batch.jobs),
    }
    if as_json:
        _say(out, json.dumps(details))
        return
    lines = [f"Playment emulator serving {details['jobs']} jobs",
             *(f"{name + ':':<13}{details[name]}"
               for name in ("base_url", "storage_url", "api_key", "project_id", "batch_id")),
             "",
             "Pull it with:",
             f"  PLAYMENT_BASE_URL={emulator.base_url} PLAYMENT_API_KEY={emulator.api_key} "
             f"playment-datasets pull {emulator.project_id} {emulator.batch_id}",
             "Press Ctrl-C to stop."]
    _say(out, "\n".join(lines))


def _say(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _install_sigterm(stop: threading.Event) -> object:
    if threading.current_thread() is not threading.main_thread():
        return None

    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return signal.signal(signal.SIGTERM, _on_sigterm)


def _restore_sigterm(previous: object) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(run_emulator_cli())
