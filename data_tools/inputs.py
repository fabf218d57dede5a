"""Input files: gzip/bzip2 compression and a UTF-8 byte-order mark.

`convert` reads gzip and bzip2 files (Criteo's day files ship as .gz),
recognised by their magic bytes whatever their name, and files that start
with a UTF-8 byte-order mark (BOM), as spreadsheet programs write them:

* `open_data(path)` gives the (decompressed) bytes after a BOM;
  `chunks.read_first_line` and `chunks.read_lines` read through it, so a
  header's first column name never carries the BOM and row offsets (the
  key of the `--split` hash) count from the end of it: a file converts the
  same with or without one.
* `stage(paths, tmp_dir)` streams each compressed input into a plain copy
  in the conversion's temporary directory (bounded memory, but as much free
  disk as the uncompressed data until the conversion ends). Both engines
  then cut that copy into byte ranges like any other input (which needs
  seeking), so the output is the same as from the uncompressed file.
"""

from __future__ import annotations

import collections
import errno
import io
import os
import shutil
import sys

from data_tools.outputs import ConvertError

UTF8_BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b\x08"  # ID1 ID2, CM = deflate
# "BZh", block size '1'-'9', then a block's or the end of stream's magic
BZIP2_MAGIC = b"BZh"
BZIP2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
COPY_BYTES = 4 << 20
COPY_DIR = "_inputs"  # in the temporary dir: decompressed copies


class Source(collections.namedtuple(
        "Source", "path read_path compression crc32c")):
    """One input file as given and as the engines read it.

    path: the file given; read_path: the plain file the engines read (path
    itself, or its decompressed copy); compression: "", "gzip" or "bzip2";
    crc32c: of the compressed file (the engines checksum the plain ones),
    or None.
    """

    __slots__ = ()


def compression_of(path: str) -> str:
    """'gzip' or 'bzip2' from the file's magic bytes, else ''."""
    with open(path, "rb") as f:
        head = f.read(10)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if (head.startswith(BZIP2_MAGIC) and head[3:4].isdigit()
            and head[3:4] != b"0" and head[4:10] in BZIP2_BLOCK_MAGICS):
        return "bzip2"
    return ""


def _open(path: str, compression: str) -> io.BufferedIOBase:
    if compression == "gzip":
        import gzip  # only for compressed inputs: keeps `convert` quick
        return gzip.open(path, "rb")
    if compression == "bzip2":
        import bz2
        return bz2.open(path, "rb")
    return open(path, "rb")


def open_data(path: str) -> tuple[io.BufferedIOBase, int]:
    """(the file's bytes, decompressed, positioned after a UTF-8 BOM; the
    BOM's length, 0 without one)."""
    f = _open(path, compression_of(path))
    try:
        origin = len(UTF8_BOM) if f.read(len(UTF8_BOM)) == UTF8_BOM else 0
        f.seek(origin)
    except BaseException:
        f.close()
        raise
    return f, origin


def data_start(path: str) -> int:
    """Bytes before the data: the length of a leading UTF-8 BOM, or 0."""
    f, origin = open_data(path)
    f.close()
    return origin


def stage(paths: list[str], tmp_dir: str, quiet: bool) -> list[Source]:
    """A Source per input, decompressing compressed ones into `tmp_dir`."""
    sources = []
    for k, path in enumerate(paths):
        kind = compression_of(path)
        if not kind:
            sources.append(Source(path, path, "", None))
            continue
        copy_dir = os.path.join(tmp_dir, COPY_DIR)
        os.makedirs(copy_dir, exist_ok=True)
        read_path = os.path.join(copy_dir, f"{k}-{os.path.basename(path)}")
        if not quiet:
            print(f"data_tools convert: decompressing {path} ({kind}) into "
                  f"{copy_dir} (deleted at the end; it needs the free disk "
                  f"of the uncompressed data)", file=sys.stderr)
        _decompress(path, kind, read_path)
        from data_tools.crc32c import crc32c_file
        sources.append(Source(path, read_path, kind, crc32c_file(path)))
    return sources


def remove_copies(tmp_dir: str) -> None:
    """Deletes the decompressed copies `stage` made (once converted)."""
    copy_dir = os.path.join(tmp_dir, COPY_DIR)
    if os.path.isdir(copy_dir):
        shutil.rmtree(copy_dir, ignore_errors=True)


def _decompress(path: str, kind: str, dest: str) -> None:
    import shutil
    import zlib
    try:
        with _open(path, kind) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, COPY_BYTES)
        return
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise ConvertError(
                f"no space left to decompress {path} into {dest}: free disk "
                f"space there (next to --out), or decompress the file "
                f"yourself onto a disk with room and convert that") from None
        if e.errno is not None:  # an I/O error, not a bad stream
            raise
        reason = str(e)
    except (EOFError, zlib.error) as e:
        reason = str(e)
    raise ConvertError(f"cannot decompress {path} ({kind}: {reason}): the "
                       f"file is truncated or corrupt; download it again")
