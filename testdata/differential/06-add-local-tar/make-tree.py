# Writes tree.tar and tree.tar.bz2 (run: python3 make-tree.py): owners, modes,
# links and an implicit parent directory, as an archive made elsewhere has.
import bz2, io, tarfile

def entries():
    def add(name, typ, mode, uid=0, gid=0, data=b"", link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = typ, mode, uid, gid, 946684800
        ti.linkname, ti.size = link, len(data)
        return ti, io.BytesIO(data) if data else None
    return [
        add("top", tarfile.DIRTYPE, 0o755),
        add("top/a", tarfile.REGTYPE, 0o644, 1000, 1000, b"a\n"),
        add("top/x", tarfile.REGTYPE, 0o755, data=b"#!/bin/sh\n"),
        add("top/link", tarfile.SYMTYPE, 0o777, link="a"),
        add("top/hard", tarfile.LNKTYPE, 0o644, 1000, 1000, link="top/a"),
        add("top/priv", tarfile.DIRTYPE, 0o700, 1000, 1000),
        add("top/priv/s", tarfile.REGTYPE, 0o600, 1000, 1000, b"s\n"),
        add("top/shared", tarfile.DIRTYPE, 0o2775, 0, 1000),
        add("other/implicit/f", tarfile.REGTYPE, 0o644, data=b"f\n"),
    ]

def write(fileobj):
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries():
            tf.addfile(ti, data)

with open("tree.tar", "wb") as f:
    write(f)
buf = io.BytesIO()
write(buf)
with open("tree.tar.bz2", "wb") as f:
    f.write(bz2.compress(buf.getvalue()))
