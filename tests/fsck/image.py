#!/usr/bin/env python3
"""Raw views of a vmfs image for t_fsck_random.sh (docs/SPEC.md layout).

  image.py damage INFO_JSON IMG SEED ROUND
      overwrite random bytes -- and in every third round a whole random
      512-byte sector -- inside the metadata of IMG: heartbeat region,
      journal headers, cluster headers, allocated inodes, pointer blocks
      in use and the small blocks holding directory chunks.  Reproducible:
      the same SEED and ROUND on the same image write the same bytes.
      Prints one line per write.

  image.py datahash INFO_JSON IMG > BEFORE_JSON
      sha256 per data block: "owned" (every file block and small block a
      regular file or symlink maps, from the image's own maps) and
      "file_area" (every non-zero object of the file-block area, found
      with SEEK_DATA so sparse images stay cheap).

  image.py check INFO_JSON IMG BEFORE_JSON [allow-file-area]
      the blocks BEFORE_JSON lists as owned are unchanged in IMG, and so
      is the file-block area (unless allowed to change: fsck clones a
      block claimed twice into a free one).  Exit 1 and print what changed.

INFO_JSON is the output of `vmfs info --json IMG` (the areas).
"""
import hashlib
import json
import os
import random
import struct
import sys

BLK = 4096
OBJ = 512
S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000
PTR_MASK = (1 << 56) - 1
PTR_TBZ = 1 << 63
NDIRECT, NPER = 251, 506
RES = ["inodes", "pointer_blocks", "small_blocks", "file_blocks"]


class Image:
    def __init__(self, info_path, img):
        with open(info_path) as f:
            info = json.load(f)
        self.a = info["areas"]
        self.max_hosts = info["max_hosts"]
        self.f = open(img, "r+b")

    def read(self, off, n=BLK):
        self.f.seek(off)
        return self.f.read(n)

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def bits(self, t):
        """Objects in use in area t (whatever the headers say)."""
        ar = self.a[RES[t]]
        used = []
        for cl in range(ar["clusters"]):
            b = self.read(ar["header_offset"] + cl * BLK)
            if b[OBJ:OBJ + 4] != b"RSCL":
                continue
            nobjs = struct.unpack_from("<I", b, OBJ + 0x28)[0]
            bm = b[OBJ + 0x40:OBJ + 0x440]
            for i in range(min(nobjs, 8192)):
                if bm[i >> 3] & (1 << (i & 7)):
                    used.append(cl * ar["per_cluster"] + i)
        return used

    def inode(self, ino):
        b = self.read(self.a["inodes"]["object_offset"] + ino * BLK)
        if b[OBJ:OBJ + 4] != b"NODE":
            return None
        mode, = struct.unpack_from("<I", b, OBJ + 0x30)
        size, = struct.unpack_from("<Q", b, OBJ + 0x40)
        mt, = struct.unpack_from("<H", b, OBJ + 0x7C)
        m = struct.unpack_from("<256Q", b, OBJ + 0x100)
        return {"mode": mode, "size": size, "map_type": mt, "map": m}

    def in_area(self, t, addr):
        ar = self.a[RES[t]]
        o = addr - ar["object_offset"]
        return o >= 0 and o % ar["object_size"] == 0 and \
            o // ar["object_size"] < ar["count"]

    def walk(self, node, ptrblks, data):
        """Data pointers (lbn, ptr) and pointer-block addresses of a map."""
        if node["map_type"] == 0:
            return
        m = node["map"]
        for i in range(NDIRECT):
            if m[i]:
                data.append((i, m[i]))
        base, span = NDIRECT, NPER
        for d in range(1, 5):
            p = m[NDIRECT + d - 1]
            if p:
                self._sub((p & PTR_MASK) * BLK, d, base, ptrblks, data)
            base += span
            span *= NPER

    def _sub(self, addr, d, base, ptrblks, data):
        if not self.in_area(1, addr) or addr in ptrblks:
            return
        ptrblks.add(addr)
        b = self.read(addr)
        if b[0:4] != b"PBLK":
            return
        ptrs = struct.unpack_from("<506Q", b, 0x30)
        step = NPER ** (d - 1)
        for i, e in enumerate(ptrs):
            if not e:
                continue
            if d == 1:
                data.append((base + i, e))
            else:
                self._sub((e & PTR_MASK) * BLK, d - 1, base + i * step,
                          ptrblks, data)

    def survey(self):
        """Metadata regions by kind, and data blocks owned by files."""
        a = self.a
        md = {"heartbeat": [], "journal": [], "cluster": [], "inode": [],
              "ptrblk": [], "dirchunk": []}
        hb = a["heartbeat"]
        md["heartbeat"] = [hb["offset"] + i * BLK
                           for i in range(hb["slots"] + 1)]
        j = a["journals"]
        md["journal"] = [j["offset"] + s * j["size_bytes"]
                         for s in range(j["count"])]
        for t in range(4):
            ar = a[RES[t]]
            md["cluster"] += [ar["header_offset"] + c * BLK
                              for c in range(ar["clusters"])]
        ptrblks, owned = set(), []
        sbs = a["small_blocks"]["object_size"]
        for ino in self.bits(0):
            if ino == 0:
                continue
            md["inode"].append(a["inodes"]["object_offset"] + ino * BLK)
            n = self.inode(ino)
            if not n or n["mode"] == 0:
                continue
            data = []
            self.walk(n, ptrblks, data)
            kind = n["mode"] & S_IFMT
            t = 3 if n["map_type"] == 2 else 2
            for lbn, p in data:
                addr = (p & PTR_MASK) * BLK
                if not self.in_area(t, addr):
                    continue
                if kind == S_IFDIR:
                    nch = min(sbs, max(0, n["size"] - lbn * sbs)) // BLK
                    md["dirchunk"] += [addr + k * BLK for k in range(nch)]
                elif kind in (S_IFREG, S_IFLNK):
                    owned.append((t, addr))
        md["ptrblk"] = sorted(ptrblks)
        return md, owned


def damage(info, img, seed, rnd):
    im = Image(info, img)
    md, _ = im.survey()
    r = random.Random("%s/%s" % (seed, rnd))
    kinds = [k for k in sorted(md) if md[k]]
    sector = int(rnd) % 3 == 0
    for _ in range(r.randint(1, 6)):
        kind = r.choice(kinds)
        blk = r.choice(md[kind])
        if sector or r.random() < 0.1:
            s = r.randrange(BLK // 512)
            im.write(blk + s * 512, bytes(r.getrandbits(8) for _ in range(512)))
            print("%s block %d: sector %d overwritten" % (kind, blk, s))
            continue
        n = r.randint(1, 8)
        offs = []
        for _ in range(n):
            # Mostly the first sector, where headers and counts live.
            o = r.randrange(512) if r.random() < 0.5 else r.randrange(BLK)
            im.write(blk + o, bytes([r.getrandbits(8)]))
            offs.append(o)
        print("%s block %d: bytes at %s" % (kind, blk, ",".join(map(str, offs))))
    im.f.close()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_area(im):
    """sha256 of every non-zero object of the file-block area."""
    fa = im.a["file_blocks"]
    lo, size = fa["object_offset"], fa["object_size"]
    hi = lo + fa["count"] * size
    fd = im.f.fileno()
    out, off = {}, lo
    while off < hi:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        if d >= hi:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        first = (d - lo) // size
        last = (min(h, hi) - 1 - lo) // size
        for i in range(first, last + 1):
            b = im.read(lo + i * size, size)
            if b.count(0) != len(b):
                out[str(i)] = sha(b)
        off = lo + (last + 1) * size
    return out


def datahash(info, img):
    im = Image(info, img)
    _, owned = im.survey()
    out = {"owned": {}, "file_area": file_area(im)}
    for t, addr in owned:
        out["owned"][str(addr)] = sha(im.read(addr, im.a[RES[t]]["object_size"]))
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


def check(info, img, before, allow_file_area):
    """The blocks the reference's files owned, read back raw at the same
    addresses (the repaired maps are not trusted), and the file-block area."""
    im = Image(info, img)
    with open(before) as f:
        b = json.load(f)
    bad = 0
    for k, v in sorted(b["owned"].items(), key=lambda kv: int(kv[0])):
        addr = int(k)
        t = 3 if im.in_area(3, addr) else 2
        if sha(im.read(addr, im.a[RES[t]]["object_size"])) != v:
            print("data block at %d (%s) changed" % (addr, RES[t]))
            bad += 1
    if not allow_file_area:
        a = file_area(im)
        keys = set(a) | set(b["file_area"])
        diff = sorted(int(k) for k in keys
                      if a.get(k) != b["file_area"].get(k))
        if diff:
            print("file-block area objects changed: %s" % diff[:20])
            bad += 1
    print("%d owned data blocks checked%s, %d differences" %
          (len(b["owned"]), "" if allow_file_area else " and the file-block area", bad))
    return 1 if bad else 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "damage" and len(sys.argv) == 6:
        damage(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    elif cmd == "datahash" and len(sys.argv) == 4:
        datahash(sys.argv[2], sys.argv[3])
    elif cmd == "check" and len(sys.argv) in (5, 6):
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4],
                       len(sys.argv) == 6 and sys.argv[5] == "allow-file-area"))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
