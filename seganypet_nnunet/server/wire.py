"""nnInteractive's remote protocol on the wire (protocol B, as spoken by ``nninteractive-client`` 2.6).

Arrays travel as "NNIA" frames: magic ``NNIA``, version 1, codec id (1 = blosc2 ZSTD, 2 = LZ4), ndim, dtype-name
length, the numpy dtype name in ASCII, the shape as little-endian int64, then a uint32 chunk count and per chunk its
uncompressed and compressed byte lengths (uint64 each) followed by one ``blosc2.compress2`` frame (chunks of at most
1 GiB). Binary requests carry their JSON metadata in the ``X-Meta`` header; answers to interactions carry
``{"ran_prediction", "bbox", "dtype", "shape"}`` there and the changed sub-volume as the body.

Space: every array and bbox here is in the uploaded array's axis order (a0, a1, a2) = (z, y, x); bboxes are half-open
``[[lb, ub], [lb, ub], [lb, ub]]``.
"""

from __future__ import annotations

import json
import struct

import blosc2
import numpy as np

META_HEADER = "X-Meta"
LEASE_HEADER = "X-Lease-Token"
OCTET_STREAM = "application/octet-stream"
MAGIC, VERSION = b"NNIA", 1
CODECS = {1: blosc2.Codec.ZSTD, 2: blosc2.Codec.LZ4}
CHUNK = 1 << 30
DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16", "float32", "float64", "bool")


class ProtocolError(ValueError):
    """A request the protocol does not allow (answered with HTTP 400 and a one-line ``detail``)."""


def encode_array(array: np.ndarray, clevel: int = 3) -> bytes:
    """One NNIA frame (ZSTD, no filter: masks compress best that way) of ``array``."""
    array = np.ascontiguousarray(array)
    name = array.dtype.name.encode("ascii")
    head = struct.pack(f"<4sBBBB{len(name)}s", MAGIC, VERSION, 1, array.ndim, len(name), name)
    raw = memoryview(array).cast("B") if array.nbytes else memoryview(b"")
    starts = range(0, raw.nbytes, CHUNK)
    parts = [head, struct.pack(f"<{array.ndim}q", *array.shape), struct.pack("<I", len(starts))]
    for start in starts:
        piece = raw[start : start + CHUNK]
        frame = blosc2.compress2(
            piece,
            typesize=array.dtype.itemsize,
            codec=blosc2.Codec.ZSTD,
            clevel=clevel,
            filters=[blosc2.Filter.NOFILTER],
        )
        parts += [struct.pack("<QQ", piece.nbytes, len(frame)), frame]
    return b"".join(parts)


def decode_array(body: bytes, what: str = "body") -> np.ndarray:
    """The array of one NNIA frame; ProtocolError naming ``what`` when the frame is malformed."""
    try:
        magic, version, codec, ndim, name_len = struct.unpack_from("<4sBBBB", body, 0)
        if magic != MAGIC or version != VERSION or codec not in CODECS:
            raise ProtocolError(f"{what}: not an NNIA v1 array (magic {magic!r}, version {version}, codec {codec})")
        name = bytes(body[8 : 8 + name_len]).decode("ascii")
        if name not in DTYPES:
            raise ProtocolError(f"{what}: NNIA array of unsupported dtype {name!r}")
        offset = 8 + name_len
        shape = struct.unpack_from(f"<{ndim}q", body, offset)
        offset += 8 * ndim
        (n_chunks,) = struct.unpack_from("<I", body, offset)
        offset += 4
        out = np.empty(shape, np.dtype(name))
        flat = out.reshape(-1).view(np.uint8)
        written = 0
        for _ in range(n_chunks):
            ulen, clen = struct.unpack_from("<QQ", body, offset)
            offset += 16
            frame = memoryview(body)[offset : offset + clen]
            if len(frame) != clen or written + ulen > flat.nbytes or blosc2.get_cbuffer_sizes(frame)[0] != ulen:
                raise ProtocolError(f"{what}: NNIA chunk lengths do not match the declared shape {list(shape)}")
            flat[written : written + ulen] = np.frombuffer(blosc2.decompress2(frame), np.uint8)
            written += ulen
            offset += clen
        if written != flat.nbytes:
            raise ProtocolError(f"{what}: NNIA payload of {written} bytes for a {name} array of shape {list(shape)}")
        return out
    except (struct.error, UnicodeDecodeError, RuntimeError, ValueError) as err:
        if isinstance(err, ProtocolError):
            raise
        raise ProtocolError(f"{what}: malformed NNIA array ({type(err).__name__}: {err})") from None


def parse_json(raw: bytes | str | None, what: str) -> dict:
    """A JSON object (empty input -> {}); ProtocolError naming ``what`` otherwise."""
    if raw is None or (isinstance(raw, (bytes, str)) and not raw.strip()):
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ProtocolError(f"{what}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def triple(value, what: str) -> tuple[float, float, float]:
    """Three finite numbers (a0, a1, a2)."""
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ProtocolError(f"{what}: expected three numbers, got {value!r}") from None
    if len(out) != 3 or not all(np.isfinite(out)):
        raise ProtocolError(f"{what}: expected three finite numbers, got {value!r}")
    return out


def bbox_of(value, shape: tuple[int, ...], what: str) -> tuple[tuple[int, int], ...]:
    """A half-open ``[[lb, ub]] * 3`` box inside ``shape`` with every extent >= 1."""
    try:
        box = tuple((int(lb), int(ub)) for lb, ub in value)
    except (TypeError, ValueError):
        raise ProtocolError(f"{what}: expected [[lb, ub], [lb, ub], [lb, ub]], got {value!r}") from None
    if len(box) != 3:
        raise ProtocolError(f"{what}: expected three [lb, ub] intervals, got {len(box)}")
    for axis, ((lb, ub), n) in enumerate(zip(box, shape, strict=True)):
        if not 0 <= lb < ub <= n:
            raise ProtocolError(f"{what}: axis {axis} interval [{lb}, {ub}) is empty or outside [0, {n})")
    return box


def flag(meta: dict, key: str, default: bool) -> bool:
    """A boolean field of a request (missing -> ``default``)."""
    value = meta.get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key}: expected true or false, got {value!r}")
    return value


def change_answer(ran: bool, bbox, crop: np.ndarray | None) -> tuple[dict, bytes]:
    """(X-Meta dict, body) of an interaction answer: the changed crop of the target buffer, or an empty body."""
    if crop is None or bbox is None:
        return {"ran_prediction": ran, "bbox": None, "dtype": "uint8", "shape": None}, b""
    meta = {"ran_prediction": ran, "bbox": [[int(a), int(b)] for a, b in bbox], "dtype": crop.dtype.name}
    meta["shape"] = list(crop.shape)
    return meta, encode_array(crop)
