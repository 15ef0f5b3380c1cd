#!/usr/bin/env python3
"""Manifests of a mounted vmfs volume, for the fsck tests.

  manifest.py make MOUNTPOINT > MANIFEST
      one line per path below MOUNTPOINT (lost+found excluded: fsck
      moves things there): path, type, and what must not change --
      size and digest of a regular file's data, a symlink's target -- then
      the extended attributes (name=hex value, sorted).

  manifest.py check REF NEW [EXCLUDED...]
      every line of REF whose path is not at or below an EXCLUDED path
      must be in NEW unchanged.  Paths only in NEW are fine (fsck may
      add names, e.g. NAME.dupN).  Exit 1 and print the differences.
"""
import hashlib
import os
import stat
import sys


def xattrs(path):
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return ""
    out = []
    for n in names:
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            v = ("<%s>" % e.strerror).encode()
        out.append("%s=%s" % (n, v.hex()))
    return ",".join(out)


CHUNK = 1 << 20
ZERO = bytes(CHUNK)


def digest(path):
    """sha256 of the data, with each all-zero 1 MiB chunk hashed as one
    byte: the thin disks are mostly holes, and hashing them is slow."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = 0
            while n < CHUNK:
                got = f.readinto(view[n:])
                if not got:
                    break
                n += got
            if not n:
                break
            if n == CHUNK and buf == ZERO:
                h.update(b"Z")
            else:
                h.update(b"D")
                h.update(view[:n])
    return h.hexdigest()


def describe(path):
    st = os.lstat(path)
    m = st.st_mode
    if stat.S_ISREG(m):
        what = "file %d %s" % (st.st_size, digest(path))
    elif stat.S_ISLNK(m):
        what = "link " + os.readlink(path)
    elif stat.S_ISDIR(m):
        what = "dir"
    elif stat.S_ISFIFO(m):
        what = "fifo"
    else:
        what = "other %o" % stat.S_IFMT(m)
    return "%s xattrs[%s]" % (what, xattrs(path))


def make(mp):
    lines = []

    def onerror(e):
        lines.append("%s\terror %s" % ("/" + os.path.relpath(e.filename, mp),
                                        e.strerror))

    for root, dirs, files in os.walk(mp, onerror=onerror):
        rel = os.path.relpath(root, mp)
        rel = "" if rel == "." else "/" + rel
        if rel == "":
            dirs[:] = [d for d in dirs if d != "lost+found"]
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            p = rel + "/" + name
            try:
                what = describe(os.path.join(mp, p[1:]))
            except OSError as e:
                what = "error %s" % e.strerror
            lines.append("%s\t%s" % (p, what))
    lines.sort()
    sys.stdout.write("".join(l + "\n" for l in lines))


def load(path):
    d = {}
    with open(path) as f:
        for l in f:
            p, _, rest = l.rstrip("\n").partition("\t")
            d[p] = rest
    return d


def excluded(p, ex):
    for e in ex:
        if e == "/" or p == e or p.startswith(e.rstrip("/") + "/"):
            return True
    return False


def short(s):
    return s if len(s) <= 160 else s[:100] + "..." + s[-40:]


def check(ref, new, ex):
    r, n = load(ref), load(new)
    bad = 0
    for p in sorted(r):
        if excluded(p, ex):
            continue
        if p not in n:
            print("missing: %s (was %s)" % (p, short(r[p])))
            bad += 1
        elif n[p] != r[p]:
            print("changed: %s\n   was: %s\n   now: %s" % (p, short(r[p]), short(n[p])))
            bad += 1
    checked = sum(1 for p in r if not excluded(p, ex))
    print("%d of %d paths checked, %d differ" % (checked, len(r), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4:]))
    sys.stderr.write(__doc__)
    sys.exit(2)
