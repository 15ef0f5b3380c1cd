#!/usr/bin/env bash
#
# bench/migrate.sh (make bench-migrate): the pause of a live migration.
#
#   1. vmfs: the test guest (make guest; 128 MiB, TCG, writing its
#      counter to its disk every 100 ms) migrates ROUNDS times between
#      hosts 1 and 2 of a real three-host cluster (tests/cluster/lib.sh:
#      a corosync and a vmfsd per network namespace, one LUN file) with
#      `vmfs vm migrate --json`: the guest's whole pause (the source
#      QEMU's STOP to the destination QEMU's RESUME, as vmfsd measures it
#      from both hosts' clocks and the events' own timestamps), QEMU's
#      downtime (the source's own figure,
#      which ends before the destination has loaded the state and runs the
#      guest), the lock handover, the guest's pause as its disk shows it
#      (the counter write interval that spans the switchover) and the
#      whole migration's time.
#   2. the baseline, same run: the same guest migrated ROUNDS times
#      between two plain QEMUs on this machine over loopback, its disk a
#      raw file on the host's file system (no datastore, no locks), the
#      same migration parameters; the same figures but the handover (its
#      pause from the QMP events' timestamps: one machine, one clock).
#
# Prints median and max of each and the vmfs/baseline ratios; asserts
# nothing.  VMFS_BIN (default <repo>/bin), VMFS_GUEST (<repo>/build/guest),
# ROUNDS (20).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export VMFS_BIN=${VMFS_BIN:-$here/../bin}
GUEST=${VMFS_GUEST:-$here/../build/guest}
ROUNDS=${ROUNDS:-20}
[[ -r $GUEST/vmlinuz && -r $GUEST/initrd.img ]] ||
	{ echo "migrate.sh: no test guest in $GUEST; run 'make guest'" >&2; exit 1; }
# shellcheck source=tests/cluster/lib.sh
source "$here/../tests/cluster/lib.sh"
set +e

LUN=$T_DIR/lun
mnt() { cl_mnt "$1"; }
VM=/vms/bench

# The VM's QEMUs and the baseline's (their disks under $T_DIR too).
cl_on_exit() { cl_kill_qemus "$T_DIR/"; }

echo "migrate: $ROUNDS migrations of a 128 MiB TCG guest, vmfs (3-host cluster) vs plain QEMU over loopback" >&2
make_lun "$LUN" 2G
t_mkfs "$LUN"
cl_up 3
cl_mount_all 3 "$LUN"
mkdir "$(mnt 1)/vms"
cl_vmfs 1 vm create "$(mnt 1)$VM" --memory 128M --disk 16M --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
	fail "vm create failed"
cl_vmfs 1 vm start "$(mnt 1)$VM" >/dev/null || fail "vm start failed"
sleep 5

: >"$T_DIR/vmfs.json"
from=1
for ((r = 0; r < ROUNDS; r++)); do
	to=$((3 - from))
	cl_vmfs "$from" vm migrate --json "$(mnt "$from")$VM" --to "h$to" \
		>"$T_DIR/one.json" 2>"$T_DIR/one.err" ||
		fail "migration $r h$from -> h$to: $(cat "$T_DIR/one.err")"
	[[ -n ${BENCH_VERBOSE:-} ]] && cat "$T_DIR/one.json" >&2
	python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' \
		"$T_DIR/one.json" >>"$T_DIR/vmfs.json"
	from=$to
	sleep 1
done
cl_vmfs "$from" vm stop --force "$(mnt "$from")$VM" >/dev/null

# The baseline: two QEMUs on this machine, the disk a raw file here.
truncate -s 16M "$T_DIR/base.img"
python3 - "$GUEST" "$T_DIR" "$ROUNDS" >"$T_DIR/base.json" <<'EOF'
import json, os, socket, subprocess, sys, threading, time
guest, tdir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
img = tdir + "/base.img"

def qemu(n, incoming=None):
    qmp = "%s/base%d.qmp" % (tdir, n)
    if os.path.exists(qmp):
        os.unlink(qmp)
    args = ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "128",
            "-smp", "1", "-display", "none", "-nodefaults", "-no-user-config",
            "-chardev", "file,id=c0,path=%s/base-console.log,append=on" % tdir,
            "-serial", "chardev:c0", "-qmp", "unix:%s,server=on,wait=off" % qmp,
            "-kernel", guest + "/vmlinuz", "-initrd",
            guest + "/initrd.img", "-append", "console=ttyS0 quiet panic=-1",
            "-drive", "file=%s,format=raw,if=virtio,cache=none,aio=native" % img,
            "-nic", "none"]
    if incoming:
        args += ["-incoming", incoming]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(qmp)
            f = s.makefile("rw")
            f.readline()
            q = (s, f, [])
            call(q, "qmp_capabilities")
            return p, q
        except OSError:
            time.sleep(0.05)
    raise SystemExit("QEMU did not come up")

def call(q, cmd, **args):
    s, f, events = q
    f.write(json.dumps({"execute": cmd, "arguments": args} if args else {"execute": cmd}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r.get("return", r.get("error"))
        if "event" in r:   # QEMU's wall clock: one machine, one clock
            t = r["timestamp"]
            events.append((r["event"], t["seconds"] + t["microseconds"] / 1e6))

def last(q, name):
    ts = [t for e, t in q[2] if e == name]
    return ts[-1] if ts else None

samples = []
stop = False
def sampler():
    fd = os.open(img, os.O_RDONLY | os.O_DIRECT)
    import mmap
    buf = mmap.mmap(-1, 4096)
    last = None
    while not stop:
        os.preadv(fd, [buf], 0)
        b = bytes(buf[:64])
        if b != last:
            samples.append(time.monotonic())
            last = b
        time.sleep(0.01)
threading.Thread(target=sampler, daemon=True).start()

src, sq = qemu(0)
time.sleep(5)
for r in range(rounds):
    port = 47000 + r
    dst, dq = qemu(1 - r % 2 if False else (r + 1) % 2, "tcp:127.0.0.1:%d" % port)
    call(sq, "migrate-set-parameters", **{"max-bandwidth": 1 << 30, "downtime-limit": 100})
    t0 = time.monotonic()
    call(sq, "migrate", uri="tcp:127.0.0.1:%d" % port)
    while True:
        m = call(sq, "query-migrate")
        if m.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.005)
    t1 = time.monotonic()
    time.sleep(3)
    call(dq, "query-status")   # its events so far: RESUME
    stop, resume = last(sq, "STOP"), last(dq, "RESUME")
    pause = int((resume - stop) * 1000) if stop and resume and resume > stop else -1
    before = [t for t in samples if t <= t1 - (m.get("downtime", 0) / 1000.0)]
    after = [t for t in samples if t > t1 - (m.get("downtime", 0) / 1000.0)]
    gap = int((after[0] - before[-1]) * 1000) if before and after else -1
    normal = 0
    prev = [t for t in samples if t0 - 3 <= t <= t0]
    for a, b in zip(prev, prev[1:]):
        normal = max(normal, int((b - a) * 1000))
    print(json.dumps({"state": m.get("status"), "downtime_ms": m.get("downtime", 0),
                      "pause_ms": pause,
                      "elapsed_ms": int((t1 - t0) * 1000), "counter_gap_ms": gap,
                      "counter_interval_ms": normal}))
    sys.stdout.flush()
    if m.get("status") != "completed":
        # The source runs on; the incoming QEMU ends (or is ended) here.
        print("baseline round %d: migration %s: %s" % (r + 1, m.get("status"),
              m.get("error-desc", "")), file=sys.stderr)
        dst.kill()
        dst.wait()
        continue
    call(sq, "quit")
    src.wait()
    src, sq = dst, dq
stop = True
call(sq, "quit")
src.wait()
EOF

python3 - "$T_DIR/vmfs.json" "$T_DIR/base.json" <<'EOF'
import json, statistics, sys
def load(p):
    return [json.loads(l) for l in open(p) if l.strip()]
v, b = load(sys.argv[1]), load(sys.argv[2])
def fig(rows, k):
    xs = [r[k] for r in rows if r.get(k, -1) >= 0 and
          r.get("state") in ("done", "completed")]
    return (statistics.median(xs), max(xs)) if xs else (float("nan"), float("nan"))
print("%-34s %14s %14s %8s" % ("", "vmfs med/max", "QEMU med/max", "ratio"))
for k, name in (("pause_ms", "guest paused, STOP to RESUME (ms)"),
                ("downtime_ms", "QEMU downtime (ms)"),
                ("handover_ms", "lock handover (ms)"),
                ("counter_gap_ms", "guest counter gap (ms)"),
                ("counter_interval_ms", "counter interval before (ms)"),
                ("elapsed_ms", "whole migration (ms)")):
    vm, vx = fig(v, k)
    if k == "handover_ms":
        print("%-34s %6.0f/%-7.0f %14s %8s" % (name, vm, vx, "-", "-"))
        continue
    bm, bx = fig(b, k)
    print("%-34s %6.0f/%-7.0f %6.0f/%-7.0f %8.2f" % (name, vm, vx, bm, bx,
          vm / bm if bm else float("nan")))
print("runs: vmfs %d done of %d, baseline %d completed of %d" %
      (sum(r["state"] == "done" for r in v), len(v),
       sum(r["state"] == "completed" for r in b), len(b)))
EOF
for i in 1 2 3; do
	cl_umount "$i" "$(mnt "$i")"
done
