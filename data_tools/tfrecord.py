"""TFRecord framing and tf.train.Example serialization without TensorFlow.

The converter writes millions of records, and building a `tf.train.Example`
proto per row costs several microseconds. Our Examples always have the same
shape (see `tfdsmlp.features`)::

    ids   int64[num_categorical]   (packed varints)
    dense float[num_numeric]       (packed little-endian float32; omitted if 0)
    label float[1]

so this module writes their protobuf wire bytes directly: everything except
the packed id varints is a constant or depends only on the payload length.
TFRecord framing needs CRC-32C (Castagnoli), which the standard library
lacks; `data_tools.crc32c.masked_crc32c_batch` computes it with numpy for a
whole batch of records at once (imported on first use, so that the native
converter's path starts without numpy). Tests read the output back with
TensorFlow to check both.

TFRecord record layout: uint64 length, uint32 masked_crc(length),
data[length], uint32 masked_crc(data), all little-endian.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int (or int64 two's complement)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


_HEADER_CACHE: dict[int, bytes] = {}


def _length_header(length: int) -> bytes:
    header = _HEADER_CACHE.get(length)
    if header is None:
        from data_tools.crc32c import crc32c, mask
        raw = struct.pack("<Q", length)
        header = raw + struct.pack("<I", mask(crc32c(raw)))
        if len(_HEADER_CACHE) < 65536:
            _HEADER_CACHE[length] = header
    return header


def frame_records(records: Sequence[bytes]) -> bytes:
    """TFRecord-framed concatenation of `records`."""
    from data_tools.crc32c import masked_crc32c_batch
    crcs = masked_crc32c_batch(records).astype("<u4").tobytes()
    parts = []
    for i, rec in enumerate(records):
        parts.append(_length_header(len(rec)))
        parts.append(rec)
        parts.append(crcs[4 * i:4 * i + 4])
    return b"".join(parts)


class RecordFileWriter:
    """Appends framed records to a file, optionally as a gzip member stream.

    Every `close` ends one complete gzip member; concatenated members form a
    valid multi-member gzip file, which TensorFlow's GZIP reader accepts (an
    empty member would end its reading early, so none is ever written).
    """

    def __init__(self, path: str, compression: str = "") -> None:
        self.path = path
        self.rows = 0
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._zip = (zlib.compressobj(6, zlib.DEFLATED, 31)
                     if compression == "GZIP" else None)

    def write_batch(self, records: Sequence[bytes]) -> None:
        if not records:
            return
        data = frame_records(records)
        self.rows += len(records)
        self._file.write(self._zip.compress(data) if self._zip else data)

    def close(self) -> None:
        if self._zip is not None and self.rows:
            self._file.write(self._zip.flush())
        self._file.close()


class ExampleEncoder:
    """Serializes rows into tf.train.Example wire bytes.

    `encode(packed_ids, dense, label)` takes the concatenated varints of the
    ids (see `varint`), a float sequence of length `num_numeric` and a 0/1
    label; `num_categorical` only sets how long `packed_ids` may be.
    The constant pieces are public for writers that assemble records
    themselves: `head(ids_len)`, `dense_prefix` (the bytes before the
    dense floats; empty without numeric fields), `label_bytes(label)`.
    """

    def __init__(self, num_categorical: int, num_numeric: int) -> None:
        self.num_categorical = num_categorical
        self.num_numeric = num_numeric
        self._dense_fmt = struct.Struct(f"<{num_numeric}f")
        if num_numeric:
            float_list = b"\x0a" + varint(4 * num_numeric)  # + payload
            feat_len = len(float_list) + 4 * num_numeric
            feature = b"\x12" + varint(feat_len)  # Feature.float_list
            entry = (b"\x0a\x05dense\x12"
                     + varint(len(feature) + feat_len))
            entry_len = len(entry) + len(feature) + feat_len
            self.dense_prefix = (b"\x0a" + varint(entry_len) + entry
                                  + feature + float_list)
            self._dense_size = len(self.dense_prefix) + 4 * num_numeric
        else:
            self.dense_prefix = b""
            self._dense_size = 0
        self._label_entry = {lab: self._float_entry("label", [float(lab)])
                             for lab in (0, 1)}
        self._heads: dict[int, bytes] = {}

    @staticmethod
    def _float_entry(key: str, values: Iterable[float]) -> bytes:
        vals = list(values)
        payload = struct.pack(f"<{len(vals)}f", *vals)
        float_list = b"\x0a" + varint(len(payload)) + payload
        feature = b"\x12" + varint(len(float_list)) + float_list
        kb = key.encode()
        entry = (b"\x0a" + varint(len(kb)) + kb + b"\x12"
                 + varint(len(feature)) + feature)
        return b"\x0a" + varint(len(entry)) + entry

    def head(self, ids_len: int) -> bytes:
        """Everything before the packed ids, for a payload of `ids_len` bytes."""
        head = self._heads.get(ids_len)
        if head is None:
            int64_list = b"\x0a" + varint(ids_len)
            feature = b"\x1a" + varint(len(int64_list) + ids_len)
            feat_len = len(feature) + len(int64_list) + ids_len
            entry = b"\x0a\x03ids\x12" + varint(feat_len)
            entry_len = len(entry) + feat_len
            ids_entry_len = 1 + len(varint(entry_len)) + entry_len
            features_len = (ids_entry_len + self._dense_size
                            + len(self._label_entry[0]))
            head = (b"\x0a" + varint(features_len)
                    + b"\x0a" + varint(entry_len) + entry + feature
                    + int64_list)
            self._heads[ids_len] = head
        return head

    def dense_bytes(self, values: Sequence[float]) -> bytes:
        if not self.num_numeric:
            return b""
        return self.dense_prefix + self._dense_fmt.pack(*values)

    def label_bytes(self, label: int) -> bytes:
        return self._label_entry[label]

    def encode(self, packed_ids: bytes, dense: Sequence[float],
               label: int) -> bytes:
        return (self.head(len(packed_ids)) + packed_ids
                + self.dense_bytes(dense) + self._label_entry[label])
