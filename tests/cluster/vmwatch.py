#!/usr/bin/env python3
"""Watch the test guests' counters on a LUN, from outside every host.

    vmwatch.py watch LUN OUT [SECS]   sample until killed (or SECS)
    vmwatch.py check OUT              exit 1 and say why on a violation

The test guest (guest/init) writes, every 100 ms, one 512-byte block at
offset 0 of its first disk: "vmfs-guest-counter N" and, on the next line,
"vmfs-guest-boot ID" (ID: that boot's random id).  A thin disk's first
block never moves on the LUN, so this reads the LUN file itself with
O_DIRECT -- no mount, no lock -- finds every such block (SEEK_DATA over
the sparse file, again every few seconds for new VMs) and samples them
every 20 ms.  OUT gets one JSON line per change: time, LUN offset,
counter, boot.

The checker's rules, per block (per VM): the counter never goes down, and
once a boot's writes were followed by another boot's, the first boot never
writes again -- two running copies of a VM would interleave.
"""
import json
import mmap
import os
import re
import sys
import time

SIG = b"vmfs-guest-counter "
LINE = re.compile(rb"^vmfs-guest-counter (\d+)\nvmfs-guest-boot ([0-9a-f-]+)\n")


def find_blocks(fd, size):
    found = []
    buf = mmap.mmap(-1, 1 << 20)
    off = 0
    while off < size:
        try:
            off = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = min(os.lseek(fd, off, os.SEEK_HOLE), size)
        pos = off & ~4095
        while pos < end:
            n = os.preadv(fd, [buf], pos)
            if n <= 0:
                break
            data = buf[:n]
            i = data.find(SIG)
            while i >= 0:
                if i % 512 == 0 and LINE.match(data[i:i + 512]):
                    found.append(pos + i)
                i = data.find(SIG, i + 1)
            pos += n
        off = end
    return found


def watch(lun, out, secs):
    fd = os.open(lun, os.O_RDONLY | os.O_DIRECT)
    size = os.fstat(fd).st_size
    blk = mmap.mmap(-1, 4096)
    blocks, last, next_scan = [], {}, 0.0
    end = time.monotonic() + secs if secs else None
    with open(out, "a", buffering=1) as f:
        while end is None or time.monotonic() < end:
            now = time.monotonic()
            if now >= next_scan:
                for b in find_blocks(fd, size):
                    if b not in blocks:
                        blocks.append(b)
                next_scan = now + 3.0
            for b in blocks:
                base = b & ~4095
                os.preadv(fd, [blk], base)
                m = LINE.match(blk[b - base:b - base + 512])
                if not m:
                    continue
                v = (int(m.group(1)), m.group(2).decode())
                if last.get(b) != v:
                    last[b] = v
                    f.write(json.dumps({"t": time.time(), "off": b,
                                        "n": v[0], "boot": v[1]}) + "\n")
            time.sleep(0.02)


def check(out):
    per = {}
    bad = []
    for line in open(out):
        r = json.loads(line)
        s = per.setdefault(r["off"], {"n": -1, "boot": None, "ended": set(),
                                      "boots": 0, "samples": 0})
        s["samples"] += 1
        if r["n"] < s["n"]:
            bad.append("offset %d: counter went back %d -> %d" % (r["off"], s["n"], r["n"]))
        if r["boot"] != s["boot"]:
            if r["boot"] in s["ended"]:
                bad.append("offset %d: boot %s wrote again (counter %d) after boot %s "
                           "had taken over: two copies ran" % (r["off"], r["boot"], r["n"], s["boot"]))
            if s["boot"]:
                s["ended"].add(s["boot"])
            s["boot"] = r["boot"]
            s["boots"] += 1
        s["n"] = r["n"]
    for off, s in sorted(per.items()):
        print("vmwatch: VM disk at LUN offset %d: %d changes seen, %d boots, counter at %d"
              % (off, s["samples"], s["boots"], s["n"]))
    for b in bad:
        print("vmwatch: VIOLATION: " + b)
    print("vmwatch: %d violations" % len(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "watch":
        watch(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0)
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        sys.exit(__doc__)
