"""Backdate an object's modification time in SeaweedFS's filer, so that a lifecycle rule of whole
days can be seen to fall due within a test (S3 accepts no rule shorter than a day). The filer's
gRPC API with the protobuf wire format written out by hand: two calls and three fields
(filer.proto: LookupDirectoryEntry, UpdateEntry; Entry.attributes = 4; FuseAttributes.mtime = 2,
mtime_ns = 19)."""

from __future__ import annotations

import grpc  # a development dependency: tests and benchmarks only

SERVICE = "/filer_pb.SeaweedFiler/"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, bytes]]:
    """(field number, wire type, raw bytes of the whole field) in order."""
    out, pos = [], 0
    while pos < len(data):
        start = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, wire, data[start:pos]))
    return out


def _payload(raw: bytes) -> bytes:
    """The content of a length-delimited field."""
    _, pos = _read_varint(raw, 0)
    _, pos = _read_varint(raw, pos)
    return raw[pos:]


def _string(number: int, text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def backdate(filer_grpc: str, bucket: str, key: str, mtime: int) -> None:
    """Set the object's modification time (unix seconds), everything else unchanged."""
    directory, _, name = f"/buckets/{bucket}/{key}".rpartition("/")
    with grpc.insecure_channel(filer_grpc) as channel:
        lookup = channel.unary_unary(SERVICE + "LookupDirectoryEntry")
        answer = lookup(_string(1, directory) + _string(2, name), timeout=10)
        entry = next(_payload(raw) for n, _, raw in _fields(answer) if n == 1)
        rebuilt = b""
        for number, _, raw in _fields(entry):
            if number == 4:
                attrs = b"".join(r for n, _, r in _fields(_payload(raw)) if n not in (2, 19))
                attrs += _varint(2 << 3) + _varint(mtime)
                raw = _string(4, attrs)
            rebuilt += raw
        update = channel.unary_unary(SERVICE + "UpdateEntry")
        update(_string(1, directory) + _string(2, rebuilt), timeout=10)
