#!/usr/bin/env python3
"""One host's share of a multi-host metadata storm (tests/integration).

mh_workload.py MOUNT HOST SECONDS SEED STATEFILE [--fsync-only]

Works in MOUNT/HOST (its own directory) and MOUNT/shared (every host's),
on names that start with HOST, so each host knows what its own files must
hold: create, write, rename (within and across the two directories, also
over an existing name), hard link, unlink, setxattr.  Every change is
recorded in a dict path -> content; at the end the dict is written to
STATEFILE as JSON ({"files": {relpath: content}, "xattrs": {...}}).

--fsync-only: only create, write and fsync new files, appending
"relpath<TAB>content" to STATEFILE after each fsync returns (for a host
that is killed during the storm: what it fsync'ed must survive).
Errors from other hosts' locks (EBUSY) are retried; any other error ends
the run with a message.  A host keeps at most MAX_FILES names: past that a
create becomes an unlink, so the volume never fills however fast the
hosts go (each file takes a 64 KiB small block, or a 1 MiB file block
once those ran out).
"""
import errno
import json
import os
import random
import sys
import time

mnt, host, secs, seed, statefile = sys.argv[1:6]
fsync_only = "--fsync-only" in sys.argv[6:]
rng = random.Random(int(seed))
dirs = [host, "shared"]
for d in dirs:
    os.makedirs(os.path.join(mnt, d), exist_ok=True)
files = {}    # relpath -> content (bytes as str)
xattrs = {}   # relpath -> value
inodes = {}   # relpath -> group id (hard links share one)
end = time.time() + float(secs)
MAX_FILES = 300
n = 0
ops = {}


def retry(fn, *a):
    for i in range(200):
        try:
            return fn(*a)
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.05)
    raise OSError(errno.EBUSY, "still busy after 200 tries")


def write(rel, data, sync=False):
    p = os.path.join(mnt, rel)
    fd = retry(os.open, p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data.encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def newname():
    global n
    n += 1
    return "%s/%s-%d" % (rng.choice(dirs), host, n)


def group(rel):
    return [r for r in files if inodes[r] == inodes[rel]]


if fsync_only:
    with open(statefile, "a") as log:
        while time.time() < end:
            rel = newname()
            data = "%s %d %s\n" % (host, n, "x" * rng.randint(0, 3000))
            write(rel, data, sync=True)
            log.write("%s\t%s\n" % (rel, data.encode().hex()))
            log.flush()
    sys.exit(0)

while time.time() < end:
    op = rng.choice(["create", "create", "write", "rename", "rename_over",
                     "link", "unlink", "xattr"])
    if op == "create" and len(files) >= MAX_FILES:
        op = "unlink"
    ops[op] = ops.get(op, 0) + 1
    if op == "create" or not files:
        rel = newname()
        data = "%s %d %s\n" % (host, n, "y" * rng.randint(0, 9000))
        write(rel, data)
        files[rel] = data
        inodes[rel] = rel
        continue
    rel = rng.choice(sorted(files))
    if op == "write":
        data = "%s rewrite %d\n" % (host, rng.randint(0, 1 << 30))
        write(rel, data)
        for r in group(rel):
            files[r] = data
    elif op == "rename":
        dst = newname()
        retry(os.rename, os.path.join(mnt, rel), os.path.join(mnt, dst))
        files[dst] = files.pop(rel)
        inodes[dst] = inodes.pop(rel)
        if rel in xattrs:
            xattrs[dst] = xattrs.pop(rel)
    elif op == "rename_over":
        others = [r for r in files if r != rel and inodes[r] != inodes[rel]]
        if not others:
            continue
        dst = rng.choice(sorted(others))
        retry(os.rename, os.path.join(mnt, rel), os.path.join(mnt, dst))
        files[dst] = files.pop(rel)
        inodes[dst] = inodes.pop(rel)
        xattrs.pop(dst, None)
        if rel in xattrs:
            xattrs[dst] = xattrs.pop(rel)
    elif op == "link":
        dst = newname()
        retry(os.link, os.path.join(mnt, rel), os.path.join(mnt, dst))
        files[dst] = files[rel]
        inodes[dst] = inodes[rel]
        if rel in xattrs:
            xattrs[dst] = xattrs[rel]
    elif op == "unlink":
        retry(os.unlink, os.path.join(mnt, rel))
        del files[rel]
        del inodes[rel]
        xattrs.pop(rel, None)
    elif op == "xattr":
        val = "v%d" % rng.randint(0, 1 << 20)
        retry(os.setxattr, os.path.join(mnt, rel), "user.mh", val.encode())
        for r in group(rel):
            xattrs[r] = val

with open(statefile, "w") as f:
    json.dump({"files": files, "xattrs": xattrs, "ops": ops}, f)
print("%s: %d operations %s" % (host, sum(ops.values()), ops))
