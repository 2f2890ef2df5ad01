#!/usr/bin/env python3
"""An independent reader of DES v1 archives, written from the format description
the way the original Python implementation reads them: it unpacks the footer as
'<8sB7x7Q' (the 7 reserved bytes are skipped, never looked at), reads the index,
and serves bodies by offset. DES's tests run it over sealed archives to check
that the seal does not break readers that know nothing of it.

    original_des_reader.py ARCHIVE            list: name<TAB>size<TAB>sha256 of the body
    original_des_reader.py ARCHIVE NAME       the body of NAME on stdout
"""
import hashlib
import json
import struct
import sys

HEADER = struct.Struct("<8sB7x")
FOOTER = struct.Struct("<8sB7x7Q")
ENTRY_FIXED = struct.Struct("<QQQQI")


def read_index(data):
    magic, version = HEADER.unpack_from(data, 0)
    if magic != b"DESHEAD1" or version != 1:
        raise SystemExit("bad header")
    fields = FOOTER.unpack_from(data, len(data) - FOOTER.size)
    magic, version, data_start, data_len, meta_start, meta_len, index_start, index_len, count = fields
    if magic != b"DESFOOT1" or version != 1:
        raise SystemExit("bad footer")
    entries, pos = [], index_start
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2:pos + 2 + name_len].decode("utf-8")
        off, length, moff, mlen, flags = ENTRY_FIXED.unpack_from(data, pos + 2 + name_len)
        meta = json.loads(data[moff:moff + mlen])
        entries.append((name, off, length, meta, flags))
        pos += 2 + name_len + ENTRY_FIXED.size
    if pos != index_start + index_len:
        raise SystemExit("index length mismatch")
    return entries


def main():
    data = open(sys.argv[1], "rb").read()
    entries = read_index(data)
    if len(sys.argv) == 2:
        for name, off, length, meta, flags in entries:
            body = data[off:off + length]
            if meta.get("size") != length:
                raise SystemExit("size mismatch for " + name)
            print("%s\t%d\t%s" % (name, length, hashlib.sha256(body).hexdigest()))
    else:
        for name, off, length, meta, flags in entries:
            if name == sys.argv[2]:
                sys.stdout.buffer.write(data[off:off + length])
                return
        raise SystemExit("no entry " + sys.argv[2])


if __name__ == "__main__":
    main()
