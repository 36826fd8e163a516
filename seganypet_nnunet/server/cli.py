"""``seganypet_serve -m MODEL_FOLDER``: serve a model folder to nnInteractive's remote clients (Slicer, napari)."""

from __future__ import annotations

import argparse
import logging

from seganypet_nnunet.errors import SeganypetError, as_user_error, cli_entry
from seganypet_nnunet.pretrained import resolve_model

DEFAULT_PORT = 1527


def serve(
    *,
    model_folder,
    folds=(0,),
    checkpoint: str = "checkpoint_final.pth",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    device: str = "cpu",
    trusted: bool = False,
    config=None,
    ready=None,
):
    """Loads the model once and serves until interrupted; ``ready(server)`` is called once the port is bound."""
    from seganypet_nnunet.inference.model_folder import load_model_folder
    from seganypet_nnunet.server.app import SegAnyPETServer, ServerConfig

    config = config or ServerConfig()
    model = load_model_folder(model_folder, folds, checkpoint, trusted=trusted)
    try:
        server = SegAnyPETServer((host, port), model, config, device=device)
    except OSError as err:
        raise SeganypetError(f"--host/--port: cannot listen on {host}:{port} ({err.strerror or err})") from None
    if ready is not None:
        ready(server)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


@cli_entry("seganypet_serve")
def serve_entry(argv: list[str] | None = None) -> None:
    """``seganypet_serve``: nnInteractive's remote protocol (nninteractive-client, SlicerNNInteractive, napari)."""
    from seganypet_nnunet.cli_args import (
        add_device_argument,
        add_trust_checkpoint_argument,
        device_from_args,
        parse_folds,
    )
    from seganypet_nnunet.server.app import ServerConfig

    p = argparse.ArgumentParser(description="Serve a SegAnyPET model folder over nnInteractive's remote protocol")
    p.add_argument(
        "-m", required=True, help="[REQUIRED] model folder (Trainer__Plans__configuration) or a packaged model's name"
    )
    p.add_argument("-f", nargs="+", default=["0"], help="[OPTIONAL] folds (ensembled). Default: 0")
    p.add_argument("-chk", default="checkpoint_final.pth", help="[OPTIONAL] checkpoint. Default: checkpoint_final.pth")
    p.add_argument("--host", default="127.0.0.1", help="[OPTIONAL] address to bind. Default: 127.0.0.1 (this machine)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"[OPTIONAL] port. Default: {DEFAULT_PORT}")
    p.add_argument("--max_sessions", type=int, default=4, help="[OPTIONAL] leases held at once. Default: 4")
    p.add_argument("--idle_timeout", type=float, default=600.0, help="[OPTIONAL] seconds before an idle lease expires")
    p.add_argument("--api_key", default=None, help="[OPTIONAL] every request but /healthz needs 'Bearer KEY'")
    p.add_argument("--suv_factor", type=float, default=1.0, help="[OPTIONAL] multiply uploads by this to get SUV")
    add_device_argument(p)
    add_trust_checkpoint_argument(p)
    p.add_argument("--verbose", action="store_true", help="[OPTIONAL] log every request; tracebacks for errors")
    a = p.parse_args(argv)
    with as_user_error("-f"):
        folds = parse_folds(a.f)
    if a.max_sessions < 1:
        raise SeganypetError(f"--max_sessions: must be at least 1, got {a.max_sessions}")
    if not a.idle_timeout > 0:
        raise SeganypetError(f"--idle_timeout: must be positive, got {a.idle_timeout}")
    if not a.suv_factor > 0:
        raise SeganypetError(f"--suv_factor: must be positive, got {a.suv_factor}")
    if not 0 <= a.port < 65536:
        raise SeganypetError(f"--port: must be 0..65535, got {a.port}")
    device = device_from_args(a)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = ServerConfig(a.api_key, a.max_sessions, a.idle_timeout, a.suv_factor)

    def ready(server) -> None:
        host, port = server.server_address[:2]
        print(f"seganypet_serve: serving {a.m} on http://{host}:{port} (Ctrl-C stops)", flush=True)

    try:
        serve(
            model_folder=resolve_model(a.m),
            folds=folds,
            checkpoint=a.chk,
            host=a.host,
            port=a.port,
            device=device,
            trusted=a.trust_checkpoint,
            config=config,
            ready=ready,
        )
    except KeyboardInterrupt:
        pass
