"""The HTTP side of ``seganypet_serve``: Python's ThreadingHTTPServer speaking nnInteractive's remote protocol.

Every request but ``GET /healthz`` needs ``Authorization: Bearer <api_key>`` when the server has a key (401). Errors
answer ``{"detail": "<one line>"}``: 400 malformed request, 401 key, 404 path, 410 lease gone, 503 at capacity, 500
a server fault (logged with its traceback; the server keeps serving).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from seganypet_nnunet.inference.session import SegAnyPETSession
from seganypet_nnunet.server import wire
from seganypet_nnunet.server.leases import CapacityError, Lease, LeaseGone, LeaseManager
from seganypet_nnunet.server.protocol import LeaseSession

log = logging.getLogger("seganypet_serve")
PROTOCOL_VERSION = "2.6.0"  # the nninteractive-client release whose protocol this server speaks
MAX_BODY = 8 * 2**30


class SharedModel:
    """A ``LoadedModel`` whose fold networks are built once and handed to every session (weights shared)."""

    def __init__(self, model, device) -> None:
        self._model = model
        self._networks = model.fold_networks(device)

    def fold_networks(self, device) -> list:
        return self._networks

    def __getattr__(self, name):
        return getattr(self._model, name)


def model_supports_boxes(networks: list) -> bool:
    """Box prompts need a box embedding: the released SAM-Med3D weights (SamMed3DNet) have none."""
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet

    return not any(isinstance(net, SamMed3DNet) for net in networks)


@dataclass(frozen=True)
class ServerConfig:
    api_key: str | None = None
    max_sessions: int = 4
    idle_timeout: float = 600.0
    suv_factor: float = 1.0
    license: str = "see the model folder"


def capabilities(boxes: bool, config: ServerConfig, patch_size) -> dict:
    """``GET /capabilities``: the keys ``nninteractive-client`` requires, with what the model can serve switched on."""
    return {
        "supported_interactions": {"points": True, "bbox2d": boxes, "bbox3d": boxes, "scribble": True, "lasso": True},
        "channel_mapping": {},
        "num_interaction_channels": 0,
        "supports_initial_label": True,
        "supports_zero_shot_label_refinement": False,
        "preferred_scribble_thickness": [1, 1, 1],
        "interaction_decay": None,
        "inference_session_version": PROTOCOL_VERSION,
        "license": config.license,
        "supports_undo": True,
        "do_autozoom": True,
        "patch_size": [int(p) for p in patch_size],
        "server": "seganypet_serve",
        "expects_units": "SUV",
        "max_sessions": config.max_sessions,
    }


class SegAnyPETServer(ThreadingHTTPServer):
    """Serves one loaded model to ``config.max_sessions`` clients; ``serve_forever()`` / ``shutdown()``."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], model, config: ServerConfig, device="cpu", clock=time.monotonic, **kw):
        import torch

        self.config = config
        self.device = torch.device(device)
        self.model = SharedModel(model, self.device)
        self.boxes = model_supports_boxes(self.model.fold_networks(self.device))

        def new_state() -> LeaseSession:
            session = SegAnyPETSession(self.model, device=self.device, **kw)
            return LeaseSession(session, self.boxes, config.suv_factor)

        self.leases = LeaseManager(new_state, config.max_sessions, config.idle_timeout, clock)
        self.capabilities = capabilities(self.boxes, config, model.configuration_manager.patch_size)
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="seganypet-lease-reaper", daemon=True)
        super().__init__(address, Handler)
        self._reaper.start()

    def _reap(self) -> None:
        while not self._stop.wait(min(30.0, self.config.idle_timeout / 2)):
            self.leases.expire()

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()


class HTTPError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Handler(BaseHTTPRequestHandler):
    server: SegAnyPETServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    # ------------------------------------------------------------------------------------------- plumbing
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        try:
            body = self._read_body()
            route = ROUTES.get((method, path))
            if route is None:
                raise HTTPError(404, f"{method} {path}: no such endpoint")
            if path != "/healthz":
                self._check_key()
            status, meta, payload = route(self, body)
        except HTTPError as err:
            status, meta, payload = err.status, None, {"detail": err.detail}
        except wire.ProtocolError as err:
            status, meta, payload = 400, None, {"detail": str(err)}
        except LeaseGone as err:
            status, meta, payload = 410, None, {"detail": str(err)}
        except CapacityError as err:
            status, meta, payload = 503, None, {"detail": str(err)}
        except Exception as err:  # a server fault: logged, answered, and the server keeps serving
            log.exception("%s %s failed", method, path)
            status, meta, payload = 500, None, {"detail": f"{type(err).__name__}: {err}"}
        self._send(status, meta, payload)
        log.info("%s %s %d %.1f ms", method, path, status, 1000 * (time.perf_counter() - started))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise HTTPError(413, f"request body of {length} bytes exceeds {MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def _check_key(self) -> None:
        key = self.server.config.api_key
        if not key:
            return
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise HTTPError(401, "missing or wrong API key (Authorization: Bearer <key>)")

    def _send(self, status: int, meta: dict | None, payload) -> None:
        if isinstance(payload, bytes):
            data, ctype = payload, wire.OCTET_STREAM
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        if getattr(self, "_timing", None) is not None:  # the lease's own work, without transport (ms)
            self.send_header("Server-Timing", f"session;dur={self._timing:.1f}")
            self._timing = None
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if meta is not None:
            self.send_header(wire.META_HEADER, json.dumps(meta, separators=(",", ":")))
        self.end_headers()
        self.wfile.write(data)

    # ------------------------------------------------------------------------------------------- helpers
    def _json(self, body: bytes) -> dict:
        return wire.parse_json(body, f"{self.path} body")

    def _meta(self) -> dict:
        return wire.parse_json(self.headers.get(wire.META_HEADER), wire.META_HEADER)

    def _array(self, body: bytes):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != wire.OCTET_STREAM:
            raise wire.ProtocolError(f"Content-Type: expected {wire.OCTET_STREAM}, got {ctype or 'none'}")
        return wire.decode_array(body, f"{self.path} body")

    def _lease(self, touch: bool = True) -> Lease:
        return self.server.leases.get(self.headers.get(wire.LEASE_HEADER), touch)

    def _locked(self, op):
        lease = self._lease()
        with lease.state.lock:
            started = time.perf_counter()
            out = op(lease.state)
            self._timing = 1000 * (time.perf_counter() - started)
        self.server.leases.touch(lease)  # a long request does not count as idle time
        return out

    # ------------------------------------------------------------------------------------------- endpoints
    def healthz(self, body):
        return 200, None, {"status": "ok", "sessions": len(self.server.leases)}

    def caps(self, body):
        return 200, None, self.server.capabilities

    def claim(self, body):
        lease = self.server.leases.claim()
        timeout, cap = self.server.config.idle_timeout, self.server.config.max_sessions
        answer = {"lease_token": lease.token, "idle_timeout_seconds": timeout, "liveness_timeout_seconds": 0.0}
        return 200, None, {**answer, "max_sessions": cap}

    def release(self, body):
        return 200, None, {"released": self.server.leases.release(self.headers.get(wire.LEASE_HEADER))}

    def heartbeat(self, body):
        return 200, None, {"remaining_seconds": self.server.leases.remaining(self._lease(touch=False))}

    def lease_status(self, body):
        lease = self._lease(touch=False)
        left = self.server.leases.remaining(lease)
        answer = {"remaining_seconds": left, "idle_timeout_seconds": self.server.config.idle_timeout}
        with lease.state.lock:
            return 200, None, {**answer, **lease.state.memory()}

    def set_image(self, body):
        meta, image = self._meta(), self._array(body)
        return (200, None, self._locked(lambda s: s.set_image(image, meta)))

    def set_target_buffer(self, body):
        meta = self._json(body)
        return 200, None, self._locked(lambda s: s.set_target_buffer(meta))

    def set_do_autozoom(self, body):
        value = wire.flag(self._json(body), "do_autozoom", True)
        self._locked(lambda s: setattr(s, "do_autozoom", value))
        return 200, None, {"do_autozoom": value}

    def reset(self, body):
        self._json(body)
        return 200, None, self._locked(lambda s: s.reset())

    def _change(self, op):
        meta, payload = self._locked(op)
        return 200, meta, payload

    def undo(self, body):
        self._json(body)
        return self._change(lambda s: s.undo())

    def predict(self, body):
        self._json(body)
        return self._change(lambda s: s.predict())

    def point(self, body):
        meta = self._json(body)
        return self._change(lambda s: s.add_point(meta))

    def bbox(self, body):
        meta = self._json(body)
        return self._change(lambda s: s.add_bbox(meta))

    def scribble(self, body):
        meta, mask = self._meta(), self._array(body)
        return self._change(lambda s: s.add_scribble(mask, meta))

    def lasso(self, body):
        meta, mask = self._meta(), self._array(body)
        return self._change(lambda s: s.add_scribble(mask, meta, "lasso"))

    def initial_seg(self, body):
        meta, mask = self._meta(), self._array(body)
        return self._change(lambda s: s.add_initial_seg(mask, meta))


ROUTES = {
    ("GET", "/healthz"): Handler.healthz,
    ("GET", "/capabilities"): Handler.caps,
    ("POST", "/claim"): Handler.claim,
    ("POST", "/release"): Handler.release,
    ("POST", "/heartbeat"): Handler.heartbeat,
    ("GET", "/lease_status"): Handler.lease_status,
    ("POST", "/set_image"): Handler.set_image,
    ("POST", "/set_target_buffer"): Handler.set_target_buffer,
    ("POST", "/set_do_autozoom"): Handler.set_do_autozoom,
    ("POST", "/reset_interactions"): Handler.reset,
    ("POST", "/undo"): Handler.undo,
    ("POST", "/predict"): Handler.predict,
    ("POST", "/add_point_interaction"): Handler.point,
    ("POST", "/add_bbox_interaction"): Handler.bbox,
    ("POST", "/add_scribble_interaction"): Handler.scribble,
    ("POST", "/add_lasso_interaction"): Handler.lasso,
    ("POST", "/add_initial_seg_interaction"): Handler.initial_seg,
}
