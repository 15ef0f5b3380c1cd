#!/usr/bin/env bash
#
# t_systemd: vmfsd's sd_notify protocol, as vmfs@.service (Type=notify)
# relies on it (docs/OPERATIONS.md, "systemd").  systemd need not be
# PID 1 here: the test plays systemd's part, a unix datagram socket named
# by NOTIFY_SOCKET, and runs vmfsd --foreground as the unit does.
#
#   - READY=1 comes once, and when it comes the volume is mounted and
#     usable (a file written and read back at that moment); STATUS= lines
#     say what start-up did before;
#   - SIGTERM: STOPPING=1, then vmfsd unmounts, exits 0, and the volume's
#     journal is clean;
#   - a start that fails sends no READY=1, a STATUS= line with the reason,
#     and exits 1.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
SOCK=$T_DIR/notify.sock

make_lun "$LUN" 256M
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
mkdir -p "$MP"
MP=$(cd "$MP" && pwd -P)
T_MOUNTS+=("$MP")

# notify_run MODE MOUNTPOINT: run vmfsd under a NOTIFY_SOCKET listener
# (python below); MODE "serve" mounts, checks and stops it, "fail"
# expects the start to fail.  vmfsd's pid goes to $T_DIR/vmfsd.pid for
# the cleanup.
notify_run() {
	local rc=0
	python3 - "$1" "$VMFSD" "$LUN" "$2" "$T_STATE" "$SOCK" \
		"$T_DIR/vmfsd-mnt.log" "$T_DIR/vmfsd.pid" >"$T_DIR/notify.out" 2>&1 <<'EOF' || rc=$?
import os, signal, socket, subprocess, sys, time
mode, vmfsd, lun, mp, state, sock, log, pidfile = sys.argv[1:]

def fail(msg):
    sys.exit("FAIL: " + msg)

if os.path.exists(sock):
    os.unlink(sock)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock)
env = dict(os.environ, NOTIFY_SOCKET=sock)
p = subprocess.Popen([vmfsd, "--foreground", "--lun", lun, "--mountpoint", mp,
                      "--state-dir", state, "--log-file", log],
                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open(pidfile, "w") as f:
    f.write("%d\n" % p.pid)

def messages(timeout):
    """Datagrams until timeout s or vmfsd exits (then what is left)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(0.1)
        try:
            yield s.recv(4096).decode()
        except socket.timeout:
            if p.poll() is not None:
                s.setblocking(False)
                try:
                    while True:
                        yield s.recv(4096).decode()
                except BlockingIOError:
                    return

status = []
if mode == "fail":
    for m in messages(30):
        fields = m.split("\n")
        if "READY=1" in fields:
            fail("READY=1 from a start that failed")
        status += [f[7:] for f in fields if f.startswith("STATUS=")]
    if p.wait(30) != 1:
        fail("vmfsd exited %s, expected 1" % p.returncode)
    if not any(x.startswith("cannot mount: ") for x in status):
        fail("no STATUS=cannot mount: ... among %s" % status)
    print("\n".join(status))
    sys.exit(0)

ready = 0
for m in messages(60):
    fields = m.split("\n")
    status += [f[7:] for f in fields if f.startswith("STATUS=")]
    if "READY=1" in fields:
        ready += 1
        # The moment systemd would start what depends on the volume.
        if not os.path.ismount(mp):
            fail("READY=1 before %s is mounted" % mp)
        with open(os.path.join(mp, "ready"), "w") as f:
            f.write("usable\n")
        with open(os.path.join(mp, "ready")) as f:
            if f.read() != "usable\n":
                fail("the file written at READY=1 did not read back")
        break
if ready != 1:
    fail("no READY=1 (vmfsd %s); STATUS lines: %s" % (
        "exited %s" % p.returncode if p.poll() is not None else "runs", status))
if not any(x.startswith("opening volume") for x in status):
    fail("no STATUS=opening volume before READY=1: %s" % status)
if not status[-1].startswith("serving volume "):
    fail("the STATUS with READY=1 is %r" % status[-1])

p.send_signal(signal.SIGTERM)
stopping = False
for m in messages(60):
    fields = m.split("\n")
    if "READY=1" in fields:
        fail("a second READY=1")
    status += [f[7:] for f in fields if f.startswith("STATUS=")]
    stopping |= "STOPPING=1" in fields
if not stopping:
    fail("no STOPPING=1 after SIGTERM")
if p.wait(30) != 0:
    fail("vmfsd exited %s after SIGTERM, expected 0" % p.returncode)
if os.path.ismount(mp):
    fail("%s still mounted after vmfsd exited" % mp)
print("\n".join(status))
EOF
	[[ -s $T_DIR/vmfsd.pid ]] && T_PIDS+=("$(cat "$T_DIR/vmfsd.pid")")
	[[ $rc == 0 ]] || fail "$(cat "$T_DIR/notify.out")"
}

step "READY=1 once the mount is usable, STOPPING=1 and exit 0 on SIGTERM"
notify_run serve "$MP"
! t_info_rows "$LUN" journals state | grep -qv '^clean$' ||
	fail "a journal is not clean after the SIGTERM stop: $(t_info_rows "$LUN" journals slot state)"
t_mount "$LUN" "$MP"
expect_eq "the file written at READY=1" "$(cat "$MP/ready")" "usable"
t_umount "$MP"

step "a failed start: no READY=1, the reason in STATUS=, exit 1"
notify_run fail "$T_DIR/missing"
grep -q "cannot mount: mount point $T_DIR/missing does not exist" "$T_DIR/notify.out" ||
	fail "STATUS lines: $(cat "$T_DIR/notify.out")"

t_log "PASS"
