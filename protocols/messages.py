"""Small typed messages: a strict, self-describing binary codec (``struct``) and a registry of
frozen dataclass message types. Never pickle: only the types below can be decoded.

Format (after the codec's version byte), one tagged value::

    N | T | F                         None, True, False
    i u16 n | n bytes                  int, signed big-endian two's complement (n <= 8192)
    f 8 bytes                          float, IEEE 754 binary64 big-endian
    s u32 n | UTF-8                    str
    b u32 n | bytes                    bytes
    l u32 count | values               list
    t u32 count | values               tuple
    d u32 count | (u32 n | UTF-8 key | value)...   dict with str keys (insertion order kept)
    a u64 n | ndarray body             numpy array (the ``ndarray`` codec's format)
    m u16 n | name | u32 count | (key, value)...   a registered @message_type dataclass

NumPy scalars are sent as the matching Python int/float/bool. Nesting is limited to 64 levels.

>>> @message_type("example.Hello")
... @dataclasses.dataclass(frozen=True)
... class Hello:
...     name: str
...     count: int
>>> codec = StructCodec()
>>> from protocols.codecs import CodecContext
>>> data = b"".join(bytes(p) for p in codec.encode(Hello("bank", 3), CodecContext()))
>>> codec.decode(memoryview(data), CodecContext())
Hello(name='bank', count=3)
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from protocols.codecs import Buffer, Codec, CodecContext, NdarrayCodec
from protocols.errors import CodecError, UnsupportedPayload

__all__ = ["StructCodec", "message_type", "registered_message_types"]

_MESSAGES: dict[str, type[Any]] = {}
_NAMES: dict[type[Any], str] = {}
_MAX_DEPTH = 64
_MAX_INT_BYTES = 8192
_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
T = TypeVar("T")


def message_type(name: str) -> Callable[[type[T]], type[T]]:
    """Register a frozen dataclass as a wire message under a stable ``name``."""

    def register(cls: type[T]) -> type[T]:
        params = getattr(cls, "__dataclass_params__", None)
        if params is None or not params.frozen:
            raise TypeError(f"{cls.__qualname__} must be a frozen dataclass to be a message")
        existing = _MESSAGES.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"message type name {name!r} is already registered")
        _MESSAGES[name] = cls
        _NAMES[cls] = name
        return cls

    return register


def registered_message_types() -> dict[str, type[Any]]:
    """A snapshot ``{name: class}`` of the registered message types."""
    return dict(_MESSAGES)


class _Writer:
    def __init__(self) -> None:
        self.parts: list[Buffer] = []
        self.buf = bytearray()

    def flush(self) -> None:
        if self.buf:
            self.parts.append(bytes(self.buf))
            self.buf = bytearray()

    def str_(self, value: str) -> None:
        raw = value.encode("utf-8")
        self.buf += _U32.pack(len(raw)) + raw

    def value(self, value: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise UnsupportedPayload(f"message nested deeper than {_MAX_DEPTH} levels")
        buf = self.buf
        if value is None:
            buf += b"N"
        elif value is True or value is False or isinstance(value, np.bool_):
            buf += b"T" if value else b"F"
        elif isinstance(value, int | np.integer):
            ivalue = int(value)
            raw = ivalue.to_bytes((ivalue.bit_length() + 8) // 8, "big", signed=True)
            if len(raw) > _MAX_INT_BYTES:
                raise UnsupportedPayload(f"integer longer than {_MAX_INT_BYTES} bytes")
            buf += b"i" + _U16.pack(len(raw)) + raw
        elif isinstance(value, float | np.floating):
            buf += b"f" + _F64.pack(float(value))
        elif isinstance(value, str):
            buf += b"s"
            self.str_(value)
        elif isinstance(value, bytes | bytearray):
            buf += b"b" + _U32.pack(len(value)) + bytes(value)
        elif isinstance(value, list | tuple):
            buf += (b"l" if isinstance(value, list) else b"t") + _U32.pack(len(value))
            for item in value:
                self.value(item, depth + 1)
        elif isinstance(value, dict):
            buf += b"d" + _U32.pack(len(value))
            self.mapping(value, depth)
        elif isinstance(value, np.ndarray):
            header = NdarrayCodec.header(value)
            parts = NdarrayCodec().encode(value, CodecContext())
            body = memoryview(parts[1]).nbytes
            buf += b"a" + _U64.pack(len(header) + body) + header
            self.flush()
            self.parts.append(parts[1])
        elif type(value) in _NAMES:
            name = _NAMES[type(value)].encode("utf-8")
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            buf += b"m" + _U16.pack(len(name)) + name + _U32.pack(len(fields))
            self.mapping(fields, depth)
        else:
            raise UnsupportedPayload(
                f"type {type(value).__qualname__} cannot be sent in a message; "
                "register it with @message_type or use a supported type"
            )

    def mapping(self, value: dict[Any, Any], depth: int) -> None:
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsupportedPayload("message dict keys must be str")
            self.str_(key)
            self.value(item, depth + 1)


class _Reader:
    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.data):
            raise CodecError("message is truncated")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def u16(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = _U32.unpack(self.take(4))[0]
        return value

    def str_(self) -> str:
        try:
            return bytes(self.take(self.u32())).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError("message string is not UTF-8") from exc

    def value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise CodecError(f"message nested deeper than {_MAX_DEPTH} levels")
        tag = bytes(self.take(1))
        if tag == b"N":
            return None
        if tag == b"T":
            return True
        if tag == b"F":
            return False
        if tag == b"i":
            n = self.u16()
            if n > _MAX_INT_BYTES:
                raise CodecError("message integer too long")
            return int.from_bytes(self.take(n), "big", signed=True)
        if tag == b"f":
            return _F64.unpack(self.take(8))[0]
        if tag == b"s":
            return self.str_()
        if tag == b"b":
            return bytes(self.take(self.u32()))
        if tag in (b"l", b"t"):
            items = [self.value(depth + 1) for _ in range(self._count())]
            return items if tag == b"l" else tuple(items)
        if tag == b"d":
            return self.mapping(self._count(), depth)
        if tag == b"a":
            n = _U64.unpack(self.take(8))[0]
            return NdarrayCodec().decode(self.take(n), CodecContext())
        if tag == b"m":
            name = bytes(self.take(self.u16())).decode("utf-8", errors="replace")
            cls = _MESSAGES.get(name)
            if cls is None:
                raise CodecError(f"unknown message type {name!r}")
            fields = self.mapping(self._count(), depth)
            expected = {f.name for f in dataclasses.fields(cls)}
            if set(fields) != expected:
                raise CodecError(f"message {name!r} has fields {sorted(fields)}")
            try:
                return cls(**fields)
            except (TypeError, ValueError) as exc:
                raise CodecError(f"invalid message {name!r}: {exc}") from exc
        raise CodecError(f"unknown message tag {tag!r}")

    def _count(self) -> int:
        count = self.u32()
        if count > len(self.data) - self.pos:  # every item takes at least one byte
            raise CodecError("message item count exceeds its size")
        return count

    def mapping(self, count: int, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _ in range(count):
            key = self.str_()
            if key in out:
                raise CodecError(f"duplicate message key {key!r}")
            out[key] = self.value(depth + 1)
        return out


class StructCodec(Codec):
    """The ``struct`` codec for small typed messages (see the module doc)."""

    name = "struct"
    types = (
        "builtins.NoneType",
        "builtins.bool",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.list",
        "builtins.tuple",
        "builtins.dict",
        "numpy.generic",
    )

    def accepts(self, payload: Any) -> bool:
        return type(payload) in _NAMES

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        writer = _Writer()
        writer.value(payload, 0)
        writer.flush()
        return writer.parts

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        reader = _Reader(data)
        value = reader.value(0)
        if reader.pos != len(data):
            raise CodecError("message has trailing bytes")
        return value
