#!/usr/bin/env bash
#
# t_kill9: kill -9 of vmfsd under a metadata-heavy load, K9_ROUNDS times
# (default 50).  Each round mounts the volume (every third round with
# --commit-ms 50, the others with the default 1 s), runs two loads on it
# in the background -- a python3 one with two threads (create, write,
# rename across directories, unlink, truncate, mkdir/rmdir, link,
# symlink, set/remove xattrs, fallocate, punch hole, and fsync'ed
# writes) and a shell one (setfattr, fallocate -p, truncate, mkdir/rmdir,
# dd conv=fsync, python3 os.fsync, sync -f) -- lets them run for a random
# 0.2-1.5 s and kills vmfsd with SIGKILL, by PID.  Then:
#
#   1. `vmfs fsck -n` of the crashed volume, reading through the dirty
#      journal.  It runs on a sparse copy of the LUN, in the background:
#      the killed host's heartbeat slot is still active, so fsck watches
#      it for a lease and a renewal (about 12 s) before calling it dead,
#      and 50 of those in series would not fit.  The verdicts are
#      collected at the end.  The killed host's slot stays active until
#      that host mounts again; with its journal replayable, fsck reports
#      it as a note (PR_1_HB_SLOT_STALE in "notes", exit 0).  An fsck that
#      cannot read through a journal (it reports PR_2_JOURNAL_DIRTY,
#      "cannot replay") only logs what it finds and the round counts as
#      "deferred".
#   2. Mount again by the same host: it takes its own slot back at once
#      (only other hosts' slots are watched) and replays the journal.
#   3. Every file that was fsync'ed before the kill has exactly the
#      content recorded in a manifest outside the volume (files written
#      once under their final name are removed after the check, those
#      replaced by rename stay); every fifth round, every file, directory,
#      symlink and xattr on the volume can be stat'ed and read.
#   4. Changes made without any fsync (a third load, iv.py, in its own
#      directory: create, write, rename within and across directories
#      and over another file, unlink, mkdir/rmdir, chmod, chown, utime,
#      set/remove xattrs, truncate down and up, fallocate, punch hole)
#      that finished more than the commit interval plus the allowance
#      for a commit's own I/O before the kill (two intervals, and at
#      least interval + 0.5 s) are exactly as the load left them:
#      present or gone, size, content, mode, owner, mtime, xattrs.
#      Every fifth round the other loads stop first and iv.py runs alone
#      for that long before the kill: no fsync from anyone, so only the
#      commit interval can have made its work durable.
#   5. umount; `vmfs fsck -n` exits 0.
#
# The loads must see no error other than "no space", "no such file" and
# the like before the kill (an EIO of a write the kill cut short is
# expected and only counted).  If the load saw one before the kill, the
# daemon's debug ring is written out first (SIGUSR1).  VMFS_KEEP=1 keeps
# the scratch directory, with the crashed LUN of a failed round in
# crash/ROUND.lun.
#
# Ends with "kill -9 rounds: N, fsck clean: N, fsync'ed files verified: N,
# unsynced changes verified: N" (fsync'ed: files the load fsync'ed in a
# round, found intact after its replay; a file rewritten in several
# rounds counts once per round; unsynced: iv.py's objects whose last
# change was due by the commit interval, found as it left them).
#
#   K9_ROUNDS   rounds (default 50)
#   K9_SEED     seed for the shell's $RANDOM (default: from the clock)
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

ROUNDS=${K9_ROUNDS:-50}
SEED=${K9_SEED:-$(($(date +%s%N) % 32768))}
RANDOM=$SEED
LUN=$T_DIR/lun
MP=$T_DIR/mnt
MAN=$T_DIR/manifest         # outside the volume: P/D/A lines, see verify.py
PY=$(python3 -c 'import sys; print(sys.executable)')  # no pyenv shim per call
CRASH_JOBS=()               # "round pid" of the background crashed-state fscks
LOAD_PGIDS=()
IV_PGID=                    # iv.py's process group (the unsynced load)
: >"$MAN"
mkdir -p "$T_DIR/crash"

command -v setfattr >/dev/null || skip "setfattr (package attr) is needed"
command -v fallocate >/dev/null || skip "fallocate (util-linux) is needed"

# The loads run in their own sessions (setsid) so that one kill of the
# process group also takes the dd/setfattr they may be running.  Only our
# own groups, by id.
kill_loads() {
	local g
	for g in "${LOAD_PGIDS[@]}"; do
		kill -KILL -- "-$g" 2>/dev/null || true
	done
	for g in "${LOAD_PGIDS[@]}"; do
		wait "$g" 2>/dev/null || true
	done
	LOAD_PGIDS=()
}

# iv.py alone (it may outlive the other loads by a margin).
kill_iv() {
	[[ -n $IV_PGID ]] || return 0
	kill -KILL -- "-$IV_PGID" 2>/dev/null || true
	wait "$IV_PGID" 2>/dev/null || true
	IV_PGID=
}

k9_cleanup() {
	local rc=$? j
	trap - ERR
	# errexit would end the trap at the (exit "$rc") below, before
	# t_cleanup unmounts and stops the daemon of a failed round.
	set +e
	kill_loads
	kill_iv
	for j in "${CRASH_JOBS[@]}"; do
		kill -KILL -- "-${j#* }" 2>/dev/null || true
		wait "${j#* }" 2>/dev/null || true
	done
	[[ ${VMFS_KEEP:-0} == 1 ]] || rm -f "$T_DIR"/crash/*.lun
	(exit "$rc")   # t_cleanup exits with the status it finds in $?
	t_cleanup
}
trap k9_cleanup EXIT

# ---- the python load ------------------------------------------------------
cat >"$T_DIR/load.py" <<'EOF'
import ctypes, errno, hashlib, os, random, sys, threading, time, traceback
mp, man, rnd, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
errlog = sys.argv[5]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
PUNCH = 0x02 | 0x01          # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
IGNORE = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENOSPC,
          errno.EISDIR, errno.ENOTDIR, errno.ENODATA, errno.E2BIG,
          errno.EMLINK, errno.ERANGE}
GONE = {errno.ENOTCONN, errno.ECONNABORTED}   # vmfsd was killed
mfd = os.open(man, os.O_WRONLY | os.O_APPEND)
efd = os.open(errlog, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
stop = threading.Event()

def mlog(kind, name, sha):
    os.write(mfd, ("%s %s %s\n" % (kind, name, sha)).encode())

def fallocate(fd, mode, off, ln):
    if libc.fallocate(fd, mode, off, ln) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def write_all(fd, d):
    # A write that runs out of space part of the way returns the bytes it
    # wrote; the next one raises ENOSPC.
    v = memoryview(d)
    while v:
        v = v[os.write(fd, v):]

def size_pick(r):
    x = r.random()
    if x < 0.4: return r.randrange(0, 2048)           # inline in the inode
    if x < 0.97: return r.randrange(2048, 256 << 10)  # small blocks
    return r.randrange(1 << 20, 3 << 19)              # file blocks

class Worker(threading.Thread):
    def __init__(self, tid):
        super().__init__(daemon=True)
        self.tid, self.r, self.k = tid, random.Random(seed * 10 + tid), 0
        self.base = os.path.join(mp, "w%d" % tid)

    def dirs(self):
        return [os.path.join(self.base, "d%d" % i) for i in range(6)]

    def scan(self):
        # What the last rounds left; from here on the lists follow the ops.
        self.fl, self.dl = [], []
        for d in self.dirs():
            os.makedirs(d, exist_ok=True)
            for n in os.listdir(d):
                p = os.path.join(d, n)
                (self.dl if os.path.isdir(p) else self.fl).append(p)

    def pick(self, l):
        return l.pop(self.r.randrange(len(l))) if l else None

    def data(self, n):
        return self.r.randbytes(n)

    def durable(self):
        # Write under a temporary name, fsync, rename over a durable name
        # (new or existing), fsync the directory (or the file): the
        # content is durable when that returns.  P before the rename
        # (either content may be there after a crash), D after.
        r, self.k = self.r, self.k + 1
        name = "durable/t%d_%03d" % (self.tid, r.randrange(60))
        d = self.data(size_pick(r) if r.random() < 0.5 else r.randrange(0, 16384))
        sha = hashlib.sha256(d).hexdigest()
        tmp = os.path.join(self.base, "tmp.%d" % self.k)
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            write_all(fd, d)
            os.fsync(fd)
        finally:
            os.close(fd)
        mlog("P", name, sha)
        os.rename(tmp, os.path.join(mp, name))
        if r.random() < 0.5:
            fd = os.open(os.path.join(mp, "durable"), os.O_RDONLY | os.O_DIRECTORY)
        else:
            fd = os.open(os.path.join(mp, name), os.O_RDONLY)
        try:
            (os.fsync if r.random() < 0.7 else os.fdatasync)(fd)
        finally:
            os.close(fd)
        mlog("D", name, sha)

    def direct(self):
        # Create under the final name, write, fsync: A (anything) before,
        # D after.
        name = "durable/n%d_%d_%d" % (self.tid, rnd, self.k)
        self.k += 1
        d = self.data(self.r.randrange(0, 65536))
        mlog("A", name, "-")
        fd = os.open(os.path.join(mp, name), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
        try:
            write_all(fd, d)
            os.fsync(fd)
        finally:
            os.close(fd)
        mlog("D", name, hashlib.sha256(d).hexdigest())

    def op(self):
        r, fl = self.r, self.fl
        x = r.random()
        if x < 0.04:
            return self.durable()
        if x < 0.06:
            return self.direct()
        if x < 0.30:
            if len(fl) > 100:       # keep the volume small: delete instead
                return os.unlink(self.pick(fl))
            p = os.path.join(r.choice(self.dirs()), "f%d" % r.randrange(100000))
            with open(p, "wb") as f:
                fl.append(p)
                f.write(self.data(size_pick(r)))
            return
        if x < 0.36:
            if len(self.dl) > 10 or (self.dl and r.random() < 0.5):
                return os.rmdir(self.pick(self.dl))
            q = os.path.join(r.choice(self.dirs()), "s%d" % r.randrange(100000))
            os.mkdir(q)
            self.dl.append(q)
            return
        p = self.pick(fl)
        if p is None:
            return
        if x < 0.48:
            q = os.path.join(r.choice(self.dirs()), "r%d" % r.randrange(100000))
            os.rename(p, q)
            p = q
        elif x < 0.56:
            return os.unlink(p)
        elif x < 0.62:
            os.truncate(p, r.choice([0, r.randrange(0, 4096), r.randrange(0, 2 << 20)]))
        elif x < 0.70:
            fd = os.open(p, os.O_WRONLY)
            try:
                os.pwrite(fd, self.data(r.randrange(1, 70000)), r.randrange(0, 1 << 20))
            finally:
                os.close(fd)
        elif x < 0.80:
            if r.random() < 0.7:
                os.setxattr(p, "user.k%d" % r.randrange(8), self.data(r.randrange(1, 200)))
            else:
                os.removexattr(p, "user.k%d" % r.randrange(8))
        elif x < 0.88:
            fd = os.open(p, os.O_WRONLY)
            try:
                if r.random() < 0.5:
                    os.posix_fallocate(fd, r.randrange(0, 1 << 20), r.randrange(1, 1 << 20))
                else:
                    fallocate(fd, PUNCH, r.randrange(0, 1 << 20), r.randrange(1, 1 << 20))
            finally:
                os.close(fd)
        elif x < 0.95:
            q = os.path.join(r.choice(self.dirs()), "l%d" % r.randrange(100000))
            (os.link if r.random() < 0.5 else os.symlink)(p, q)
            fl.append(q)
        else:
            os.stat(p)
        fl.append(p)

    def run(self):
        try:
            self.scan()
        except OSError as e:
            if e.errno in GONE: return
            raise
        while not stop.is_set():
            try:
                self.op()
            except OSError as e:
                if e.errno in GONE:
                    return
                if e.errno not in IGNORE:
                    tb = traceback.extract_tb(e.__traceback__)[-1]
                    os.write(efd, ("%.6f round %d thread %d: %s (load.py line %d: %s)\n" % (
                        time.time(), rnd, self.tid, e, tb.lineno, tb.line)).encode())
                    return

try:
    os.makedirs(os.path.join(mp, "durable"), exist_ok=True)
except OSError:
    sys.exit(0)
ws = [Worker(i) for i in range(2)]
for w in ws: w.start()
for w in ws: w.join()
EOF

# ---- the shell load -------------------------------------------------------
cat >"$T_DIR/load.sh" <<'EOF'
# load.sh MP MANIFEST ROUND TMPDIR PYTHON
mp=$1 man=$2 rnd=$3 tmp=$4 py=$5
d=$mp/sh
mkdir -p "$d" "$mp/durable" 2>/dev/null || exit 0
k=0
while mountpoint -q "$mp"; do
	k=$((k + 1))
	f=$d/g$((RANDOM % 40))
	case $((RANDOM % 10)) in
	0|1) head -c $((RANDOM * 4)) /dev/urandom >"$f" ;;
	2) setfattr -n "user.s$((RANDOM % 6))" -v "0x$(head -c $((1 + RANDOM % 100)) /dev/urandom | od -An -tx1 | tr -d ' \n')" "$f" ;;
	3) fallocate -l $((RANDOM * 32)) "$f" ;;
	4) fallocate -p -o $((RANDOM * 16)) -l $((1 + RANDOM * 16)) "$f" ;;
	5) truncate -s $((RANDOM * 8)) "$f" ;;
	6) mkdir "$d/m$((RANDOM % 10))"; rmdir "$d/m$((RANDOM % 10))" ;;
	7) sync -f "$f" ;;
	8)	# dd conv=fsync under a new durable name: A before, D after
		n=durable/dd${rnd}_$k
		head -c $((RANDOM % 20000)) /dev/urandom >"$tmp/dd.$$"
		echo "A $n -" >>"$man"
		dd if="$tmp/dd.$$" of="$mp/$n" bs=4k conv=fsync status=none &&
			echo "D $n $(sha256sum <"$tmp/dd.$$" | cut -d' ' -f1)" >>"$man"
		;;
	9)	# the same through python3's os.fsync on an existing file
		"$py" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.pwrite(fd, os.urandom(4096), 8192); os.fsync(fd)' "$f" ;;
	esac 2>/dev/null
done
EOF

# ---- the unsynced load ----------------------------------------------------
# iv.py MP LOG ROUND SEED: changes without fsync in MP/iv/rROUND, one at a
# time, 0-20 ms apart.  Before a change it logs "S time obj..." (every
# object the change involves), after it "E time obj json" per object with
# what the object is now (path or null when gone, and for a file its size,
# sha256, mode, uid, inode number from a stat through the mount, xattrs,
# and its mtime while the last change of it was a utime: a data change
# sets the mtime lazily, docs/OPERATIONS.md).  A
# change that fails leaves its objects unknown for good ("X time obj...").
# Times are CLOCK_MONOTONIC (time.monotonic()).
cat >"$T_DIR/iv.py" <<'EOF'
import ctypes, errno, hashlib, json, os, random, sys, time
mp, logp, rnd, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
r = random.Random(seed)
GONE = {errno.ENOTCONN, errno.ECONNABORTED}
lfd = os.open(logp, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
base = os.path.join(mp, "iv", "r%d" % rnd)
dirs = [os.path.join(base, "d%d" % i) for i in range(4)]
objs = {}                    # id -> {"p", "dir", "data", "x"}
used = set()                 # every name given out: none is given twice
n = 0

def log(*a):
    os.write(lfd, (" ".join(str(x) for x in a) + "\n").encode())

def state(o):
    if o["p"] is None:
        return {"p": None}
    if o["dir"]:
        return {"p": o["p"], "dir": True}
    st = os.stat(o["p"])
    s = {"p": o["p"], "size": len(o["data"]),
         "sha": hashlib.sha256(bytes(o["data"])).hexdigest(),
         "mode": st.st_mode & 0o7777, "uid": st.st_uid, "ino": st.st_ino,
         "x": {k: hashlib.sha256(v).hexdigest() for k, v in o["x"].items()}}
    if o.get("mt"):
        s["mtime"] = st.st_mtime_ns
    return s

def files():
    return [k for k, o in objs.items() if not o["dir"] and o["p"]]

def on_fd(p, fn):
    fd = os.open(p, os.O_WRONLY)
    try:
        fn(fd)
    finally:
        os.close(fd)

def punch(fd, off, ln):      # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    if libc.fallocate(fd, 0x03, off, ln):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def change(ids, fn):
    log("S", time.monotonic(), *ids)
    try:
        fn()
    except OSError as e:
        if e.errno in GONE:
            sys.exit(0)
        log("X", time.monotonic(), *ids)
        for i in ids:
            objs.pop(i, None)
        return
    t = time.monotonic()
    for i in ids:
        log("E", t, i, json.dumps(state(objs[i]), separators=(",", ":")))
        if objs[i]["p"] is None:
            del objs[i]

def create():
    global n
    n += 1
    i, d = "o%d" % n, r.randrange(0, 70000) if r.random() < 0.8 else r.randrange(0, 2048)
    o = objs[i] = {"p": os.path.join(r.choice(dirs), "f%d" % n), "dir": False,
                   "data": bytearray(r.randbytes(d)), "x": {}}
    def fn():
        with open(o["p"], "wb") as f:
            f.write(o["data"])
    change([i], fn)

def mkdir():
    global n
    n += 1
    i = "o%d" % n
    o = objs[i] = {"p": os.path.join(r.choice(dirs), "s%d" % n), "dir": True}
    change([i], lambda: os.mkdir(o["p"]))

def op():
    fl = files()
    x = r.random()
    if x < 0.2 or len(fl) < 4:
        return create()
    if x < 0.25:
        ds = [k for k, o in objs.items() if o["dir"]]
        if ds and (len(ds) > 4 or r.random() < 0.5):
            k = r.choice(ds)
            def fn():
                os.rmdir(objs[k]["p"]); objs[k]["p"] = None
            return change([k], fn)
        return mkdir()
    i = r.choice(fl)
    o = objs[i]
    p = o["p"]
    if x < 0.35:
        over = [k for k in fl if k != i]
        if over and r.random() < 0.3:
            v = r.choice(over)
            def fn():
                os.rename(p, objs[v]["p"])
                o["p"], objs[v]["p"] = objs[v]["p"], None
            return change([i, v], fn)
        q = os.path.join(r.choice(dirs), "r%d" % r.randrange(10**6))
        if q in used:
            return
        used.add(q)
        def fn():
            os.rename(p, q); o["p"] = q
        return change([i], fn)
    if x < 0.42:
        def fn():
            os.unlink(p); o["p"] = None
        return change([i], fn)
    if x < 0.50:
        return change([i], lambda: os.chmod(p, r.choice([0o600, 0o640, 0o755, 0o444, 0o2750])))
    if x < 0.54:
        return change([i], lambda: os.chown(p, r.randrange(1000, 2000), -1))
    if x < 0.60:
        t = r.randrange(10**9, 2 * 10**9) * 10**9 + r.randrange(10**9)
        o["mt"] = True
        return change([i], lambda: os.utime(p, ns=(t, t)))
    if x >= 0.70:
        o["mt"] = False         # a data change: the new mtime is lazy
    if x < 0.70:
        k = "user.iv%d" % r.randrange(4)
        if k in o["x"] and r.random() < 0.4:
            def fn():
                os.removexattr(p, k); del o["x"][k]
        else:
            v = r.randbytes(r.randrange(1, 200))
            def fn():
                os.setxattr(p, k, v); o["x"][k] = v
        return change([i], fn)
    if x < 0.78:
        sz = r.choice([0, r.randrange(0, 4096), r.randrange(0, 300000)])
        def fn():
            os.truncate(p, sz)
            del o["data"][sz:]
            o["data"].extend(bytes(sz - len(o["data"])))
        return change([i], fn)
    if x < 0.86:
        off, ln = r.randrange(0, 200000), r.randrange(1, 200000)
        def fn():
            on_fd(p, lambda fd: os.posix_fallocate(fd, off, ln))
            if off + ln > len(o["data"]):
                o["data"].extend(bytes(off + ln - len(o["data"])))
        return change([i], fn)
    if x < 0.92:
        off, ln = r.randrange(0, 200000), r.randrange(1, 100000)
        def fn():
            on_fd(p, lambda fd: punch(fd, off, ln))
            end = min(off + ln, len(o["data"]))
            if off < end:
                o["data"][off:end] = bytes(end - off)
        return change([i], fn)
    off, d = r.randrange(0, 100000), r.randbytes(r.randrange(1, 70000))
    def fn():
        on_fd(p, lambda fd: os.pwrite(fd, d, off))
        if off > len(o["data"]):
            o["data"].extend(bytes(off - len(o["data"])))
        o["data"][off:off + len(d)] = d
    change([i], fn)

try:
    for d in dirs:
        os.makedirs(d, exist_ok=True)
except OSError:
    sys.exit(0)
log("B", time.monotonic())
while True:
    op()
    time.sleep(r.random() * 0.02)
EOF

# iv_verify.py MP LOG KILLED_AT MARGIN: every object of iv.py whose last
# change ended MARGIN seconds or more before KILLED_AT (monotonic, read
# just before the kill) with no change begun after it, at any time, is
# exactly as that change left it.  Prints the
# number of objects checked.
cat >"$T_DIR/iv_verify.py" <<'EOF'
import hashlib, json, os, sys
mp, logp, killed, margin = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
due_by = killed - margin
last, begun, paths, hist = {}, {}, set(), {}
for line in open(logp):
    # "E time obj json" (json has no newline); "S|X time obj..."; "B time"
    f = line.split(" ", 3) if line.startswith("E ") else line.split()
    ids = f[2:3] if f[0] == "E" else f[2:]
    for i in ids:
        hist.setdefault(i, []).append("%.3f %s" % (float(f[1]) - killed, line.strip()[:200]))
    if f[0] == "E":
        t, i, st = float(f[1]), f[2], json.loads(f[3])
        if st["p"]:
            paths.add((i, st["p"]))
        if t <= due_by:
            last[i] = (t, st)
    elif f[0] in ("S", "X"):
        # Whenever it began: KILLED_AT is read just before the kill, and
        # a change begun a moment later may still have landed.
        for i in ids:
            begun.setdefault(i, []).append(float(f[1]))
bad, checked = [], 0
for i, (t, st) in sorted(last.items()):
    if any(b > t for b in begun.get(i, [])):
        continue            # changed again before the kill: unknown
    checked += 1
    p = st["p"]
    if p is None:
        continue            # gone: checked by path below
    try:
        s = os.lstat(p)
    except FileNotFoundError:
        bad.append("%s %s: missing (its last change ended %.3f s before the kill)" % (i, p, killed - t))
        continue
    if st.get("dir"):
        if not os.path.isdir(p):
            bad.append("%s %s: not a directory" % (i, p))
        continue
    with open(p, "rb") as fh:
        data = fh.read()
    got = {"size": s.st_size, "sha": hashlib.sha256(data).hexdigest(),
           "mode": s.st_mode & 0o7777, "uid": s.st_uid, "mtime": s.st_mtime_ns,
           "ino": s.st_ino,
           "x": {k: hashlib.sha256(os.getxattr(p, k)).hexdigest()
                 for k in os.listxattr(p) if k.startswith("user.iv")}}
    diff = ["%s is %s, was %s" % (k, v, st[k]) for k, v in got.items()
            if k in st and st[k] != v]
    if diff:
        bad.append("%s %s: %s when its last change ended %.3f s before the kill; its log (s from the kill):\n    %s" % (
            i, p, "; ".join(diff), killed - t, "\n    ".join(hist[i][-12:])))
# A name that an object left for good (unlinked, renamed away, or
# renamed over) more than the margin before the kill, that no object
# still holds or may hold, is gone.
held = {p for (i, p) in paths if i not in last or last[i][1]["p"] == p
        or any(b > last[i][0] for b in begun.get(i, []))}
for (i, p) in sorted(paths):
    if p not in held and os.path.lexists(p):
        bad.append("%s %s: still there, but the object left this name more than %.3f s before the kill" % (
            i, p, margin))
if bad:
    print("\n".join(bad[:20]), file=sys.stderr)
    sys.exit(1)
print(checked)
EOF

# ---- checks ---------------------------------------------------------------
# verify.py MP MANIFEST: every name in the manifest has an allowed content
# (P: this content may be there, A: anything may be there, D: exactly this
# content, fsync'ed by the load; V and R: what the last check found).
# Prints how many names were fsync'ed by the load this round (last line D)
# and have exactly that content, then appends what it found (durable now:
# a clean unmount follows) as V lines (R: absent), so the next round
# starts from there.
cat >"$T_DIR/verify.py" <<'EOF'
import hashlib, os, sys
mp, man = sys.argv[1], sys.argv[2]
st, hist = {}, {}
for no, line in enumerate(open(man), 1):
    kind, name, sha = line.split()
    hist.setdefault(name, []).append("%s@%d:%s" % (kind, no, sha[:12]))
    s = st.setdefault(name, {"done": None, "pend": set(), "any": False, "fresh": False})
    if kind == "P":
        s["pend"].add(sha)
    elif kind == "A":
        s["any"] = True
    elif kind in "DV":
        s.update(done=sha, pend=set(), any=False, fresh=kind == "D")
    elif kind == "R":
        s.update(done=None, pend=set(), any=False, fresh=False)
bad, fresh, out = [], 0, []
for name, s in sorted(st.items()):
    p = os.path.join(mp, name)
    try:
        with open(p, "rb") as f:
            data = f.read()
        cur = hashlib.sha256(data).hexdigest()
    except FileNotFoundError:
        data, cur = b"", None
    allowed = s["pend"] | {s["done"]}
    if not s["any"] and cur not in allowed:
        bad.append("%s: content %s (%d bytes, %s), expected %s; manifest history "
                   "(kind@line:sha): %s" % (
                   name, cur or "(missing)", len(data),
                   "all zero" if data and not data.strip(b"\0") else "not all zero",
                   " or ".join(x or "(missing)" for x in sorted(allowed, key=str)),
                   " ".join(hist[name][-8:])))
    if s["fresh"] and not s["any"] and not s["pend"] and cur == s["done"]:
        fresh += 1
    b = os.path.basename(name)
    if cur and (b.startswith("n") or b.startswith("dd")):
        # The one-shot names (create + fsync, dd conv=fsync) are removed
        # once checked, so they do not fill the volume round after round.
        os.unlink(p)
        cur = None
    if s["fresh"] or s["any"] or s["pend"] or s["done"] != cur:
        out.append("V %s %s\n" % (name, cur) if cur else "R %s -\n" % name)
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
with open(man, "a") as f:
    f.writelines(out)
print(fresh)
EOF

# walk.py MP: stat every entry, read the head and tail of every file,
# every symlink and xattr: what the daemon cannot serve after replay
# shows up here.
cat >"$T_DIR/walk.py" <<'EOF'
import os, sys
n = 0
for root, ds, fs in os.walk(sys.argv[1]):
    for x in ds + fs:
        p = os.path.join(root, x)
        os.lstat(p)
        for a in os.listxattr(p, follow_symlinks=False):
            os.getxattr(p, a, follow_symlinks=False)
        if os.path.islink(p):
            os.readlink(p)
        elif os.path.isfile(p):
            # The head and the tail: enough to walk the block map's
            # direct pointers and its deepest level without reading
            # every byte of every round's files.
            with open(p, "rb") as f:
                f.read(256 << 10)
                f.seek(max(0, os.fstat(f.fileno()).st_size - (256 << 10)))
                f.read()
        n += 1
print(n)
EOF

# crash_fsck ROUND: fsck -n a sparse copy of the crashed LUN in the
# background (see the header); the verdict lands in crash/ROUND.{json,rc}.
# With VMFS_KEEP=1 the copy stays until its verdict is in (crash_collect),
# so a failing round leaves the volume as the kill left it in
# crash/ROUND.lun.
crash_fsck() {
	local r=$1 c=$T_DIR/crash/$1
	cp --sparse=always "$LUN" "$c.lun"
	# In its own process group, like the loads, so that the cleanup can
	# stop the fsck with the shell that waits for it.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c 'rc=0
		"$1" fsck -n --json --mem-limit 32M "$2.lun" >"$2.json" 2>"$2.err" || rc=$?
		echo "$rc" >"$2.rc"
		[[ ${VMFS_KEEP:-0} == 1 ]] || rm -f "$2.lun"' k9-fsck "$VMFS" "$c" </dev/null &
	CRASH_JOBS+=("$r $!")
}

# Wait until fewer than $1 crashed-state fscks run; judge those done.
crash_throttle() {
	local j live
	while :; do
		crash_collect
		live=0
		for j in "${CRASH_JOBS[@]}"; do
			t_pid_alive "${j#* }" && live=$((live + 1))
		done
		((live < $1)) && return
		sleep 0.2
	done
}

# Judge every crashed-state fsck that has finished and not been judged
# (crash_judge below): fail on a bad one, count the others.
declare -A verdicts=() judged=()
crash_collect() {
	local j r v
	for j in "${CRASH_JOBS[@]}"; do
		r=${j%% *}
		[[ -z ${judged[$r]:-} && -f $T_DIR/crash/$r.rc ]] || continue
		judged[$r]=1
		v=$(crash_judge "$r")
		case $v in
		bad:*) fail "fsck -n of the volume as the kill of round $r left it: $v" ;;
		deferred:*)
			[[ $v == *"home blocks show"* ]] && t_log "round $r crashed state: $v"
			v=deferred
			;;
		esac
		verdicts[$v]=$((${verdicts[$v]:-0} + 1))
		rm -f "$T_DIR/crash/$r.lun"
	done
}

# crash_judge ROUND: "clean", "stale-slot" (only the killed host's slot),
# "deferred: ..." (fsck cannot look through the journal yet) or "bad: ...".
crash_judge() {
	"$PY" - "$T_DIR/crash/$1.json" "$(cat "$T_DIR/crash/$1.rc")" <<'EOF'
import json, sys
rc = int(sys.argv[2])
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("bad: fsck exited %d without JSON (%s)" % (rc, e)); sys.exit()
codes = [p["code"] for p in j["problems"]]
other = sorted(set(codes) - {"PR_1_HB_SLOT_STALE", "PR_2_JOURNAL_DIRTY"})
notes = [n["code"] for n in j.get("notes", [])]
if rc == 0:
    print("stale-slot" if "PR_1_HB_SLOT_STALE" in notes else "clean")
elif rc & ~4 or j.get("error"):
    print("bad: exit %d: %s" % (rc, j.get("error")))
elif "PR_2_JOURNAL_DIRTY" in codes:
    print("deferred: journal not replayed by fsck" + ("; un-replayed home blocks show " + " ".join(other) if other else ""))
elif other:
    print("bad: " + "; ".join("%s %s" % (p["code"], p["detail"]) for p in j["problems"]
                              if p["code"] != "PR_1_HB_SLOT_STALE"))
else:
    print("stale-slot")
EOF
}

# ---- the rounds -----------------------------------------------------------
step "mkfs (4 host slots, 2 MiB journals so the ring wraps)"
make_lun "$LUN" 2G
t_mkfs "$LUN" --max-hosts 4 --journal-size 2M
t_log "seed $SEED (K9_SEED=$SEED reproduces the shell's choices)"

SECONDS=0
verified=0
iv_verified=0
clean=0
after_kill_errors=0
for ((i = 1; i <= ROUNDS; i++)); do
	# Every third round commits every 50 ms instead of the default 1 s.
	# What the commit interval promises is checked once that interval,
	# plus room for the commit's own write and flush under this load,
	# has passed: twice the interval, and at least the interval + 1 s
	# (a fresh-clone run once lost the last 0.6 s at 50 ms, a background
	# fsck reading beside it: no commit landed in that time, most likely
	# a slow flush; the warning for slow commits comes only once one
	# ends, and this one never did).
	opts=()
	commit_ms=1000
	((i % 3 == 0)) && opts=(--commit-ms 50) && commit_ms=50
	margin_ms=$((commit_ms + (commit_ms > 1000 ? commit_ms : 1000)))

	step "round $i: mount ${opts[*]}"
	t_mount "$LUN" "$MP" "${opts[@]}"
	pid=$(vmfsd_pid_of "$(cd "$MP" && pwd -P)") || fail "no vmfsd for $MP"

	step "round $i: load"
	setsid "$PY" "$T_DIR/load.py" "$MP" "$MAN" "$i" "$((SEED * 1000 + i))" \
		"$T_DIR/load-errors" </dev/null >>"$T_DIR/load.log" 2>&1 &
	LOAD_PGIDS+=("$!")
	setsid bash "$T_DIR/load.sh" "$MP" "$MAN" "$i" "$T_DIR" "$PY" \
		</dev/null >>"$T_DIR/load.log" 2>&1 &
	LOAD_PGIDS+=("$!")
	: >"$T_DIR/iv.log"
	setsid "$PY" "$T_DIR/iv.py" "$MP" "$T_DIR/iv.log" "$i" "$((SEED * 1000 + i))" \
		</dev/null >>"$T_DIR/load.log" 2>&1 &
	IV_PGID=$!
	ms=$((200 + RANDOM % 1301))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	if ((i % 5 == 0)); then
		# Quiet round: no fsync from anyone from here on; iv.py goes on
		# alone for the margin and a bit more.
		kill_loads
		quiet=$((margin_ms + 300))
		sleep "$((quiet / 1000)).$(printf %03d $((quiet % 1000)))"
		ms="$ms + $quiet (iv.py alone)"
	fi

	step "round $i: kill -9 vmfsd $pid after $ms ms"
	if [[ -s $T_DIR/load-errors ]]; then
		# The load saw an error: first have vmfsd write its debug ring
		# (SIGUSR1), which says what went wrong (errors go to syslog).
		# The ring keeps format strings and arguments apart; their text
		# is enough to see which message it was.
		bb=$T_STATE/vmfsd-$pid.blackbox
		kill -USR1 "$pid"
		for ((w = 0; w < 40; w++)); do
			[[ -s $bb ]] && break
			sleep 0.05
		done
		sleep 0.2
		cp "$bb" "$T_DIR/" 2>/dev/null || true
		t_log "vmfsd $pid's debug ring: $T_DIR/vmfsd-$pid.blackbox (VMFS_KEEP=1 keeps it); last messages:"
		strings -n 6 "$bb" 2>/dev/null | tail -n 30 >&2 || true
	fi
	killed_at=$(date +%s.%N)
	# Taken before the kill: the check asks no more than it should.
	killed_mono=$("$PY" -c 'import time; print(time.monotonic())')
	t_kill_vmfsd "$pid" "$MP"
	kill_loads
	kill_iv
	# A request in flight when vmfsd dies can fail with EIO rather than
	# ECONNABORTED (the kernel's FUSE write path): only errors from
	# before the kill count.
	if [[ -s $T_DIR/load-errors ]]; then
		before=$(awk -v k="$killed_at" '$1 < k' "$T_DIR/load-errors")
		[[ -z $before ]] ||
			fail "the load got an unexpected error before the kill (at $killed_at): $before"
		after_kill_errors=$((after_kill_errors + $(wc -l <"$T_DIR/load-errors")))
		t_log "after the kill: $(cut -d' ' -f2- "$T_DIR/load-errors" | tr '\n' ' ')"
		: >"$T_DIR/load-errors"
	fi

	step "round $i: fsck -n of the crashed volume (a copy, in the background)"
	crash_throttle 6
	crash_fsck "$i"

	step "round $i: mount again (journal replay)"
	t_mount "$LUN" "$MP"
	step "round $i: check the fsync'ed files"
	n=$("$PY" "$T_DIR/verify.py" "$MP" "$MAN" 2>"$T_DIR/verify.err") ||
		fail "fsync'ed files differ after replay: $(cat "$T_DIR/verify.err")"
	verified=$((verified + n))
	step "round $i: check the changes made without fsync (commit every $commit_ms ms)"
	n2=$("$PY" "$T_DIR/iv_verify.py" "$MP" "$T_DIR/iv.log" "$killed_mono" \
		"$(awk -v m="$margin_ms" 'BEGIN { print m / 1000 }')" 2>"$T_DIR/iv.err") ||
		fail "changes made without fsync more than $margin_ms ms before the kill differ after replay (log: iv.log):"$'\n'"$(cat "$T_DIR/iv.err")"
	iv_verified=$((iv_verified + n2))
	rm -rf "$MP/iv/r$i"
	if ((i % 5 == 0 || i == ROUNDS)); then
		step "round $i: walk the volume"
		"$PY" "$T_DIR/walk.py" "$MP" >/dev/null 2>"$T_DIR/walk.err" ||
			fail "walking the volume after replay failed: $(cat "$T_DIR/walk.err")"
	fi

	step "round $i: umount and fsck -n"
	t_umount "$MP"
	rc=0
	"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck.out" 2>&1 || rc=$?
	((rc == 0)) || fail "vmfs fsck -n exited $rc after round $i: $(cat "$T_DIR/fsck.out")"
	clean=$((clean + 1))
	t_log "round $i: killed after $ms ms, $n fsync'ed files and $n2 unsynced changes verified, fsck clean (${SECONDS}s)"
done

step "collect the crashed-state fscks"
for j in "${CRASH_JOBS[@]}"; do
	wait "${j#* }" 2>/dev/null || true
done
crash_collect
for j in "${CRASH_JOBS[@]}"; do
	[[ -n ${judged[${j%% *}]:-} ]] || fail "crashed-state fsck of round ${j%% *} left no status"
done
t_log "fsck -n of the crashed volumes: ${verdicts[clean]:-0} clean," \
	"${verdicts[stale-slot]:-0} with only the killed host's heartbeat slot (PR_1_HB_SLOT_STALE)," \
	"${verdicts[deferred]:-0} deferred (fsck could not read through the journal)"
t_log "mounts after a kill that replayed the journal: $(awk '
	/replayed [0-9]+ transactions/ { n++; t += $(NF-7); b += substr($(NF-5), 2) }
	END { printf "%d of '"$ROUNDS"' (%d transactions, %d blocks)", n, t, b }' "$T_DIR/vmfsd-mnt.log")"
t_log "load errors from requests the kill cut short (not counted as failures): $after_kill_errors"
echo "kill -9 rounds: $ROUNDS, fsck clean: $clean, fsync'ed files verified: $verified, unsynced changes verified: $iv_verified"
((iv_verified > 0)) || fail "no change made without fsync came due before a kill: the check checked nothing"
t_log "ok in ${SECONDS}s"
