"""seganypet_serve driven by the real ``nninteractive-client`` over a loopback port (no mocks of either side).

One tiny untrained model (``inference_data.shared_model``) is loaded once per module; every test starts its own
server on a free port in a thread (or, for the console script, as a subprocess) and shuts it down. The client's
reconstructed buffer is compared with a local ``SegAnyPETSession`` given the same image geometry and prompts.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading

import httpx
import numpy as np
import pytest
from inference_data import new_session
from nnInteractive.inference.remote.remote_session import (
    ServerAtCapacityError,
    SessionExpiredError,
    nnInteractiveRemoteInferenceSession,
)

from seganypet_nnunet.inference.model_folder import load_model_folder
from seganypet_nnunet.server import wire
from seganypet_nnunet.server.app import SegAnyPETServer, ServerConfig
from seganypet_nnunet.synthetic.case import make_case
from seganypet_nnunet.synthetic.config import SyntheticConfig


@pytest.fixture(scope="module")
def loaded(model):
    return load_model_folder(model[1], (0,))


@pytest.fixture(scope="module")
def body():
    """A small synthetic whole-body PET ((z, y, x) float32 SUV, spacing (z, y, x) mm) and its hottest lesion voxel."""
    import SimpleITK as sitk

    case = make_case(3, SyntheticConfig(size="small", max_lesions=3))
    pet = sitk.GetArrayFromImage(case.pet).astype(np.float32)
    lesion = sitk.GetArrayFromImage(case.instances) > 0
    hot = np.where(lesion, pet, -1) if lesion.any() else pet
    pet.setflags(write=False)
    return pet, tuple(case.pet.GetSpacing()[::-1]), tuple(int(v) for v in np.unravel_index(np.argmax(hot), pet.shape))


@contextlib.contextmanager
def running(loaded, **config):
    """An in-process server on a free loopback port; yields (url, server); always shut down."""
    clock = config.pop("clock", None)
    kw = {} if clock is None else {"clock": clock}
    server = SegAnyPETServer(("127.0.0.1", 0), loaded, ServerConfig(**config), device="cpu", **kw)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


@contextlib.contextmanager
def client(url, api_key=None):
    c = nnInteractiveRemoteInferenceSession(url, api_key=api_key, read_timeout=300)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    monkeypatch.delenv("NN_INTERACTIVE_API_KEY", raising=False)


def local_session(model, image, spacing_zyx):
    """A local session with the server's image geometry: spacing only, identity direction, zero origin."""
    s = new_session(model[1])
    geometry = {
        "sitk_stuff": {"spacing": spacing_zyx[::-1], "origin": (0.0, 0.0, 0.0), "direction": tuple(np.eye(3).ravel())},
        "spacing": list(spacing_zyx),
    }
    s.set_image((np.array(image), geometry))
    s.new_target("target")
    return s


def upload(c, image, spacing_zyx):
    c.set_image(image[None], {"spacing": list(spacing_zyx)})
    buffer = np.zeros(image.shape, np.uint8)
    c.set_target_buffer(buffer)
    return buffer


def test_capabilities_and_every_prompt_match_the_session(loaded, model, body):
    image, spacing, seed = body
    local = local_session(model, image, spacing)
    with running(loaded) as (url, _), client(url) as c:
        assert c.supported_interactions == {
            "points": True,
            "bbox2d": True,
            "bbox3d": True,
            "scribble": True,
            "lasso": True,
        }
        assert c.supports_undo and c.supports_initial_label and c.ping()
        buf = upload(c, image, spacing)
        assert c.original_image_shape == (1, *image.shape)

        def same():
            np.testing.assert_array_equal(buf, local.mask())

        bbox = c.add_point_interaction(seed, include_interaction=True)
        local.add_point(seed[::-1], space="voxel")
        same()
        assert bbox is not None and buf.sum() > 0
        first = buf.copy()
        near = (seed[0], seed[1] + 2, seed[2])
        c.add_point_interaction(near, include_interaction=False)
        local.add_point(near[::-1], positive=False, space="voxel")
        same()
        assert c.undo() is True
        local.undo()
        same()
        np.testing.assert_array_equal(buf, first)
        c.reset_interactions()
        local.reset()
        assert buf.sum() == 0
        assert c.undo() is False  # nothing to undo after a reset

        box = [[seed[0] - 2, seed[0] + 3], [seed[1] - 3, seed[1] + 4], [seed[2] - 3, seed[2] + 4]]
        c.add_bbox_interaction(box, include_interaction=True)
        local.add_box([b[0] for b in box][::-1], [b[1] - 1 for b in box][::-1], space="voxel")
        same()
        c.reset_interactions()
        local.reset()

        crop_box = [[seed[0], seed[0] + 1], [seed[1] - 2, seed[1] + 3], [seed[2] - 1, seed[2] + 2]]
        scribble = np.ones([b - a for a, b in crop_box], np.uint8)
        c.add_scribble_interaction(scribble, include_interaction=True, interaction_bbox=crop_box)
        full = np.zeros(image.shape, np.uint8)
        full[tuple(slice(a, b) for a, b in crop_box)] = 1
        local.add_scribble(full, positive=True)
        same()

        lasso = np.zeros(image.shape, np.uint8)
        lasso[seed[0], seed[1] - 3 : seed[1] + 4, seed[2] - 3 : seed[2] + 4] = 1
        c.add_lasso_interaction(lasso, include_interaction=True)
        local.add_scribble(lasso, positive=True)
        same()

        c.reset_interactions()
        local.reset()
        initial = np.zeros(image.shape, np.uint8)
        initial[seed[0] - 2 : seed[0] + 3, seed[1] - 2 : seed[1] + 3, seed[2] - 2 : seed[2] + 3] = 1
        c.add_initial_seg_interaction(initial)
        local.add_mask(initial)
        same()
        c.add_point_interaction(seed, include_interaction=True)
        local.add_point(seed[::-1], space="voxel")
        same()


def test_two_leases_never_see_each_others_image(loaded, model, body):
    image, spacing, seed = body
    other = np.ascontiguousarray(image[:, :, ::-1][: image.shape[0] - 6])  # mirrored, shorter: another patient
    other_seed = (seed[0] - 3, seed[1], image.shape[2] - 1 - seed[2])
    with running(loaded, max_sessions=2) as (url, server), client(url) as a, client(url) as b:
        buf_a, buf_b = upload(a, image, spacing), upload(b, other, spacing)
        assert b.original_image_shape == (1, *other.shape)
        a.add_point_interaction(seed, include_interaction=True)
        b.add_point_interaction(other_seed, include_interaction=True)
        a.add_point_interaction((seed[0], seed[1], seed[2] + 1), include_interaction=True)
        for img, sd, buf, extra in ((image, seed, buf_a, True), (other, other_seed, buf_b, False)):
            local = local_session(model, img, spacing)
            local.add_point(sd[::-1], space="voxel")
            if extra:
                local.add_point((sd[2] + 1, sd[1], sd[0]), space="voxel")
            np.testing.assert_array_equal(buf, local.mask())
        assert len(server.leases) == 2


def test_expired_unknown_and_released_leases_answer_410(loaded, body):
    now = [0.0]
    with running(loaded, idle_timeout=60.0, clock=lambda: now[0]) as (url, server), client(url) as c:
        image, spacing, seed = body
        upload(c, image[:20], spacing)
        assert c.heartbeat() == pytest.approx(60.0)
        now[0] = 61.0
        with pytest.raises(SessionExpiredError):
            c.add_point_interaction((10, seed[1], seed[2]), include_interaction=True)
        assert len(server.leases) == 0  # the expired session's memory is gone
        r = httpx.post(url + "/undo", json={}, headers={wire.LEASE_HEADER: "not-a-lease"})
        assert r.status_code == 410 and "claim" in r.json()["detail"]


def test_capacity_reached_answers_503_until_a_lease_is_released(loaded):
    with running(loaded, max_sessions=1) as (url, _):
        first = nnInteractiveRemoteInferenceSession(url)
        with pytest.raises(ServerAtCapacityError):
            nnInteractiveRemoteInferenceSession(url)
        first.close()
        with client(url) as again:
            assert again.ping()


def test_wrong_api_key_answers_401_and_healthz_stays_open(loaded):
    with running(loaded, api_key="s3cret") as (url, _):
        with pytest.raises(httpx.HTTPStatusError) as err:
            nnInteractiveRemoteInferenceSession(url, api_key="wrong")
        assert err.value.response.status_code == 401
        assert httpx.get(url + "/capabilities").status_code == 401
        assert httpx.get(url + "/healthz").status_code == 200
        with client(url, api_key="s3cret") as c:
            assert c.supported_interactions["points"]


def test_malformed_body_is_one_clear_error_and_the_server_keeps_serving(loaded, body):
    image, spacing, seed = body
    with running(loaded) as (url, _), client(url) as c:
        token = {wire.LEASE_HEADER: c._lease_token}
        bad = httpx.post(
            url + "/set_image",
            content=b"NNIA\x01\x01garbage",
            headers={**token, "Content-Type": wire.OCTET_STREAM, wire.META_HEADER: "{}"},
        )
        assert bad.status_code == 400
        detail = bad.json()["detail"]
        assert "\n" not in detail and "NNIA" in detail
        assert httpx.post(url + "/add_point_interaction", content=b"{oops", headers=token).status_code == 400
        buf = upload(c, image[:24], spacing)
        c.add_point_interaction((12, seed[1], seed[2]), include_interaction=True)
        assert buf.shape == (24, *image.shape[1:])


def test_bq_per_ml_upload_warns_and_suv_factor_converts(loaded, model, body):
    image, spacing, seed = body
    with running(loaded) as (url, _), client(url) as c:
        token = {wire.LEASE_HEADER: c._lease_token, "Content-Type": wire.OCTET_STREAM}
        bq = np.ascontiguousarray(image[None] * 5000.0)
        meta = {"image_properties": {"spacing": list(spacing)}}
        answer = httpx.post(
            url + "/set_image", content=wire.encode_array(bq), headers={**token, wire.META_HEADER: json.dumps(meta)}
        )
        assert answer.status_code == 200 and "Bq/mL" in answer.json()["warnings"][0]
        meta["image_properties"]["suv_factor"] = 1 / 5000.0
        answer = httpx.post(
            url + "/set_image", content=wire.encode_array(bq), headers={**token, wire.META_HEADER: json.dumps(meta)}
        )
        assert answer.json()["warnings"] == [] and answer.json()["suv_factor"] == pytest.approx(2e-4)


def test_nnia_round_trip_matches_the_clients_own_packing():
    from nnInteractive.inference.remote.serialization import pack_array, unpack_array

    a = (np.arange(2 * 3 * 5 * 7, dtype=np.float32).reshape(2, 3, 5, 7) % 11) - 3
    np.testing.assert_array_equal(wire.decode_array(pack_array(a)), a)
    m = (a > 1).astype(np.uint8)[0]
    np.testing.assert_array_equal(unpack_array(wire.encode_array(m)), m)
    with pytest.raises(wire.ProtocolError, match="NNIA"):
        wire.decode_array(b"nope" * 4)


def test_console_script_serves_on_a_free_port_with_a_key(model):
    cmd = [sys.executable, "-c", "from seganypet_nnunet.server.cli import serve_entry; serve_entry()"]
    cmd += ["-m", str(model[1]), "--port", "0", "--api_key", "k", "-device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the 'serving ... on http://host:port' line once the port is bound
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = f"http://127.0.0.1:{match.group(1)}"
        assert httpx.get(url + "/healthz").json()["status"] == "ok"
        assert httpx.post(url + "/claim").status_code == 401
        with client(url, api_key="k") as c:
            assert c.idle_timeout_seconds == 600.0
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_console_script_refuses_bad_flags_in_one_line(model):
    from seganypet_nnunet.server.cli import serve_entry

    with pytest.raises(SystemExit) as err:
        serve_entry(["-m", str(model[1]), "--max_sessions", "0", "-device", "cpu"])
    assert err.value.code == 1


def test_released_weights_switch_boxes_off(loaded, model, body):
    from seganypet_nnunet.model.sam_med3d import SamMed3DNet
    from seganypet_nnunet.server.app import capabilities, model_supports_boxes
    from seganypet_nnunet.server.protocol import LeaseSession

    assert not model_supports_boxes([SamMed3DNet()]) and model_supports_boxes(loaded.fold_networks("cpu"))
    caps = capabilities(False, ServerConfig(), (128, 128, 128))["supported_interactions"]
    assert caps == {"points": True, "bbox2d": False, "bbox3d": False, "scribble": True, "lasso": True}
    image, spacing, seed = body
    lease = LeaseSession(new_session(model[1]), boxes=False)
    lease.set_image(np.array(image[None]), {"image_properties": {"spacing": list(spacing)}})
    lease.set_target_buffer({"shape": list(image.shape)})
    box = [[seed[0] - 1, seed[0] + 2], [seed[1] - 2, seed[1] + 3], [seed[2] - 2, seed[2] + 3]]
    with pytest.raises(wire.ProtocolError, match="no box prompts"):
        lease.add_bbox({"bbox_coords": box, "include_interaction": True})
