"""Payload codecs: how a Python object becomes bytes in an envelope and back. Never pickle.

A :class:`CodecRegistry` picks a codec by the payload's type (its class or a base class, matched
by qualified name, so ``crypto.paillier`` and ``crypto.ckks`` are imported only when used). Every
encoded payload starts with a one-byte codec format version; decoding checks it, the size limit
and every length, and raises :class:`CodecError` on anything malformed.

Built-in codecs (name: Python type -- format after the version byte):

* ``bytes``: ``bytes``/``bytearray`` -- the raw bytes.
* ``ndarray``: ``numpy.ndarray`` -- ``u8 len | dtype str | u8 ndim | u64 shape... | raw data``
  little-endian, C order, whitelisted dtypes only (never ``object``). Streamed payloads are decoded
  from the spool file as a copy-on-write memory map, so a 1 GB array is never read into memory.
* ``struct``: ``None``/``bool``/``int``/``float``/``str``/``list``/``tuple``/``dict`` and
  registered message dataclasses -- see :mod:`protocols.messages`.
* ``paillier-key`` / ``paillier``: ``PaillierPublicKey`` and ``EncryptedArray``; a ciphertext
  names its key by fingerprint and the receiver decodes it with a key from its :class:`Keyring`
  (received public keys are added to the keyring automatically; so are the keys of ciphertexts
  this party sends).
* ``paillier-packed``: ``PackedEncryptedArray`` (several fixed-point values per ciphertext).
* ``ckks-context`` / ``ckks``: a ``CKKSContext`` (its public part: ``to_bytes()`` never includes
  the secret key) and a ``CKKSBatch``, the same way, keyed by the context's fingerprint.
"""

from __future__ import annotations

import abc
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protocols.errors import CodecError, UnsupportedPayload

__all__ = [
    "Buffer",
    "Codec",
    "CodecContext",
    "CodecRegistry",
    "EncodedPayload",
    "Keyring",
    "MAX_PAYLOAD_BYTES",
    "NDARRAY_DTYPES",
    "default_registry",
]

Buffer = bytes | bytearray | memoryview
MAX_PAYLOAD_BYTES = 4 << 30  # 4 GiB
NDARRAY_DTYPES = frozenset(
    {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8", "<c8"}
    | {"<c16"}
)
_MAX_NDIM = 32


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _public_name(cls: type) -> str:
    """``crypto.ckks._batch.CKKSBatch`` -> ``crypto.ckks.CKKSBatch`` (private modules dropped)."""
    module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    return f"{module}.{cls.__qualname__}"


class Keyring:
    """Public keys this party accepts for encrypted payloads, by fingerprint. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paillier: dict[str, Any] = {}
        self._ckks: dict[str, Any] = {}
        # id(context) -> (fingerprint, context). The context is held so that its id cannot be
        # reused by a new context while the entry exists (a bare id cache would hand a new
        # context the fingerprint of a garbage-collected one).
        self._ckks_ids: dict[int, tuple[str, Any]] = {}

    def add_paillier(self, public_key: Any) -> str:
        """Accept ciphertexts under ``public_key``; returns its fingerprint."""
        fp = _paillier_fingerprint(public_key)
        with self._lock:
            self._paillier.setdefault(fp, public_key)
        return fp

    def paillier(self, fp: str) -> Any:
        with self._lock:
            key = self._paillier.get(fp)
        if key is None:
            raise CodecError(f"Paillier ciphertext under unknown public key {fp[:16]}")
        return key

    def add_ckks(self, context: Any, *, fp: str | None = None) -> str:
        """Accept CKKS batches under ``context`` (public or with secret key); returns its id."""
        with self._lock:
            known = self._ckks_ids.get(id(context))
            if known is not None and known[1] is context:
                return known[0]
        if fp is None:
            fp = _ckks_fingerprint(context)
        with self._lock:
            self._ckks.setdefault(fp, context)
            self._ckks_ids[id(context)] = (fp, context)
        return fp

    def ckks(self, fp: str) -> Any:
        with self._lock:
            context = self._ckks.get(fp)
        if context is None:
            raise CodecError(f"CKKS batch under unknown context {fp[:16]}")
        return context


def _ckks_fingerprint(context: Any) -> str:
    """The context's own ``fingerprint`` if it has one, else SHA-256 of its public bytes."""
    fp = getattr(context, "fingerprint", None)
    if fp is None:
        return hashlib.sha256(context.to_bytes()).hexdigest()
    return fp.hex() if isinstance(fp, bytes) else str(fp)


def _paillier_fingerprint(public_key: Any) -> str:
    fp = public_key.fingerprint
    return fp.hex() if isinstance(fp, bytes) else str(fp)


@dataclass(frozen=True)
class CodecContext:
    """What decoding may need: the keyring and the size limit."""

    keyring: Keyring = field(default_factory=Keyring)
    max_payload_bytes: int = MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class EncodedPayload:
    """An encoded payload as byte parts (not concatenated, so large arrays are not copied)."""

    codec: str
    parts: tuple[Buffer, ...]

    @property
    def size(self) -> int:
        return sum(memoryview(p).nbytes for p in self.parts)

    def to_bytes(self) -> bytes:
        return b"".join(self.parts)


class Codec(abc.ABC):
    """One payload format. ``types`` are qualified class names this codec encodes."""

    name: str
    types: tuple[str, ...]
    version: int = 1

    @abc.abstractmethod
    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        """The payload's bytes after the version byte, as one or more parts."""

    @abc.abstractmethod
    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        """Decode the bytes after the version byte."""

    def accepts(self, payload: Any) -> bool:
        """Whether this codec encodes ``payload`` beyond the classes named in ``types``."""
        return False

    def decode_parts(self, parts: Sequence[memoryview], ctx: CodecContext) -> Any:
        """Decode the bytes after the version byte, given as consecutive pieces (as received).

        By default the pieces are joined (one copy) and passed to :meth:`decode`; codecs whose
        result is a copy anyway override this to copy the pieces straight into the result.
        """
        return self.decode(memoryview(b"".join(parts)), ctx)

    def decode_file(self, path: Path, offset: int, ctx: CodecContext) -> Any:
        """Decode from a spooled file starting at ``offset``; by default reads it into memory."""
        with open(path, "rb") as fh:
            fh.seek(offset)
            return self.decode(memoryview(fh.read()), ctx)


class CodecRegistry:
    """Codecs by name and by payload type."""

    def __init__(self, codecs: Sequence[Codec] = ()) -> None:
        self._by_name: dict[str, Codec] = {}
        self._by_type: dict[str, Codec] = {}
        for codec in codecs:
            self.register(codec)

    def register(self, codec: Codec) -> None:
        if codec.name in self._by_name:
            raise ValueError(f"codec {codec.name!r} is already registered")
        self._by_name[codec.name] = codec
        for type_name in codec.types:
            self._by_type[type_name] = codec

    def codec_for(self, payload: Any) -> Codec:
        for cls in type(payload).__mro__:
            codec = self._by_type.get(_qualname(cls)) or self._by_type.get(_public_name(cls))
            if codec is not None:
                return codec
        for codec in self._by_name.values():
            if codec.accepts(payload):
                return codec
        raise UnsupportedPayload(f"no codec for payload of type {_qualname(type(payload))}")

    def encode(self, payload: Any, ctx: CodecContext) -> EncodedPayload:
        codec = self.codec_for(payload)
        parts = (bytes([codec.version]), *codec.encode(payload, ctx))
        encoded = EncodedPayload(codec.name, parts)
        if encoded.size > ctx.max_payload_bytes:
            raise UnsupportedPayload(
                f"{codec.name} payload of {encoded.size} bytes exceeds {ctx.max_payload_bytes}"
            )
        return encoded

    def _codec(self, name: str, size: int, ctx: CodecContext) -> Codec:
        codec = self._by_name.get(name)
        if codec is None:
            raise CodecError(f"unknown payload codec {name!r}")
        if size > ctx.max_payload_bytes:
            raise CodecError(f"payload of {size} bytes exceeds the limit {ctx.max_payload_bytes}")
        if size < 1:
            raise CodecError(f"empty {name} payload")
        return codec

    def _check_version(self, codec: Codec, version: int) -> None:
        if version != codec.version:
            raise CodecError(f"{codec.name} payload version {version} is not supported")

    def decode(self, name: str, data: Buffer, ctx: CodecContext) -> Any:
        view = memoryview(data).cast("B")
        codec = self._codec(name, view.nbytes, ctx)
        self._check_version(codec, view[0])
        try:
            return codec.decode(view[1:], ctx)
        except CodecError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise CodecError(f"malformed {name} payload: {exc}") from exc

    def decode_parts(self, name: str, parts: Sequence[Buffer], ctx: CodecContext) -> Any:
        """:meth:`decode` of the concatenation of ``parts``, without concatenating them first.

        A receiver that got the payload in chunks hands them over as they are; the codec copies
        them once, into its result (the same checks and errors as :meth:`decode`).
        """
        views = [v for v in (memoryview(p).cast("B") for p in parts) if v.nbytes]
        if len(views) <= 1:
            return self.decode(name, views[0] if views else b"", ctx)
        codec = self._codec(name, sum(v.nbytes for v in views), ctx)
        self._check_version(codec, views[0][0])
        views[0] = views[0][1:]
        try:
            return codec.decode_parts(views, ctx)
        except CodecError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise CodecError(f"malformed {name} payload: {exc}") from exc

    def decode_file(self, name: str, path: Path, ctx: CodecContext) -> Any:
        size = path.stat().st_size
        codec = self._codec(name, size, ctx)
        with open(path, "rb") as fh:
            self._check_version(codec, fh.read(1)[0])
        try:
            return codec.decode_file(path, 1, ctx)
        except CodecError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise CodecError(f"malformed {name} payload: {exc}") from exc


class BytesCodec(Codec):
    name = "bytes"
    types = ("builtins.bytes", "builtins.bytearray")

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        return (payload,)

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        return bytes(data)

    def decode_parts(self, parts: Sequence[memoryview], ctx: CodecContext) -> Any:
        return b"".join(parts)  # the one copy: straight into the result


class NdarrayCodec(Codec):
    name = "ndarray"
    types = ("numpy.ndarray",)

    @staticmethod
    def header(array: np.ndarray[Any, Any]) -> bytes:
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        tag = dtype.str
        if tag not in NDARRAY_DTYPES:
            raise UnsupportedPayload(f"array dtype {array.dtype} is not allowed on the wire")
        if array.ndim > _MAX_NDIM:
            raise UnsupportedPayload(f"array has {array.ndim} dimensions, at most {_MAX_NDIM}")
        out = bytearray([len(tag)]) + tag.encode("ascii") + bytes([array.ndim])
        for dim in array.shape:
            out += int(dim).to_bytes(8, "big")
        return bytes(out)

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        array: np.ndarray[Any, Any] = payload
        header = self.header(array)
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        contiguous = np.ascontiguousarray(little)
        return (header, contiguous.reshape(-1).view(np.uint8).data)

    @staticmethod
    def _parse_header(data: memoryview | bytes) -> tuple[np.dtype[Any], tuple[int, ...], int]:
        n = data[0]
        tag = bytes(data[1 : 1 + n]).decode("ascii")
        if tag not in NDARRAY_DTYPES:
            raise CodecError(f"array dtype {tag!r} is not allowed")
        pos = 1 + n
        ndim = data[pos]
        if ndim > _MAX_NDIM:
            raise CodecError(f"array has {ndim} dimensions, at most {_MAX_NDIM}")
        pos += 1
        if len(data) < pos + 8 * ndim:
            raise CodecError("array header is truncated")
        shape = tuple(
            int.from_bytes(data[pos + 8 * i : pos + 8 * i + 8], "big") for i in range(ndim)
        )
        return np.dtype(tag), shape, pos + 8 * ndim

    @staticmethod
    def _expected(dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
        count = 1
        for dim in shape:
            count *= dim
        return count * dtype.itemsize

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        dtype, shape, start = self._parse_header(data)
        if len(data) - start != self._expected(dtype, shape):
            raise CodecError(f"array data has {len(data) - start} bytes, shape {shape} needs more")
        flat = np.frombuffer(data[start:], dtype=dtype).copy()
        return flat.reshape(shape)

    def decode_parts(self, parts: Sequence[memoryview], ctx: CodecContext) -> Any:
        head = parts[0]
        if head.nbytes < 2 + 255 + 8 * _MAX_NDIM and len(parts) > 1:
            return super().decode_parts(parts, ctx)  # a header cut across pieces: join them
        dtype, shape, start = self._parse_header(head)
        expected = self._expected(dtype, shape)
        data = [head[start:], *parts[1:]]
        got = sum(v.nbytes for v in data)
        if got != expected:
            raise CodecError(f"array data has {got} bytes, shape {shape} needs {expected}")
        out = np.empty(shape, dtype=dtype)
        flat = out.reshape(-1).view(np.uint8)
        pos = 0
        for piece in data:
            flat[pos : pos + piece.nbytes] = np.frombuffer(piece, dtype=np.uint8)
            pos += piece.nbytes
        return out

    def decode_file(self, path: Path, offset: int, ctx: CodecContext) -> Any:
        with open(path, "rb") as fh:
            fh.seek(offset)
            head = fh.read(1 + 255 + 1 + 8 * _MAX_NDIM)
        dtype, shape, start = self._parse_header(head)
        expected = self._expected(dtype, shape)
        if path.stat().st_size - offset - start != expected:
            raise CodecError(f"array data does not match shape {shape} and dtype {dtype}")
        if expected == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="c", offset=offset + start, shape=shape)


def default_registry() -> CodecRegistry:
    """A registry with every built-in codec (a new one each call: no shared mutable state)."""
    from protocols._crypto_codecs import (
        CkksCodec,
        CkksContextCodec,
        PackedPaillierCodec,
        PaillierCodec,
        PaillierKeyCodec,
    )
    from protocols.messages import StructCodec

    return CodecRegistry(
        [
            BytesCodec(),
            NdarrayCodec(),
            StructCodec(),
            PaillierKeyCodec(),
            PaillierCodec(),
            PackedPaillierCodec(),
            CkksContextCodec(),
            CkksCodec(),
        ]
    )
