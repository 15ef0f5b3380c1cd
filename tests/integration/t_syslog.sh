#!/usr/bin/env bash
#
# t_syslog: vmfsd's notices and warnings reach the system log by default
# (no --log-file needed), every line names the volume, and the routine
# lifecycle (LOG_INFO) and libqb's own messages (a refused control client
# is vmfsd's warning, not libqb's error) stay out of it
# (docs/OPERATIONS.md, "Logs").
#
# The test does not touch the machine's /dev/log: it runs in a private
# mount namespace whose /dev is a tmpfs holding the device nodes vmfs needs
# (bound from the real /dev) and a /dev/log socket of its own, read by a
# small listener that appends every datagram to a file.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null || skip "no unshare"
command -v setpriv >/dev/null || skip "no setpriv"
LUN=$T_DIR/lun
MP=$T_DIR/mnt
SYSLOG=$T_DIR/syslog

step "notices and warnings go to syslog, naming the volume"
make_lun "$LUN" 256M
t_mkfs "$LUN" --max-hosts 4 --journal-size 1M
uuid=$("$VMFS" info --json "$LUN" | python3 -c 'import json, sys; print(json.load(sys.stdin)["uuid"])')
mkdir -p "$MP"
chmod 711 "$T_DIR"       # nobody reaches the mount point, and is refused

cat >"$T_DIR/inner.sh" <<'EOF'
set -eu
VMFS=$1 LUN=$2 MP=$3 STATE=$4 LOG=$5 SYSLOG=$6 PIDFILE=$7 DIR=$8
realdev=$DIR/realdev
mkdir -p "$realdev"
mount --bind /dev "$realdev"
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero full random urandom fuse; do
	touch "/dev/$n"
	mount --bind "$realdev/$n" "/dev/$n"
done
mkdir /dev/shm
mount --bind "$realdev/shm" /dev/shm
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
open(sys.argv[1] + ".ready", "w").close()
with open(sys.argv[1], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\n") + b"\n")
' "$SYSLOG" &
listener=$!
trap 'kill $listener 2>/dev/null' EXIT
for ((w = 0; w < 100; w++)); do
	[[ -e $SYSLOG.ready ]] && break
	sleep 0.05
done
"$VMFS" mount --state-dir "$STATE" --log-file "$LOG" "$LUN" "$MP"
pgrep -n -f "vmfsd .*--mountpoint $MP" >"$PIDFILE" || true
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$VMFS" info "$MP" \
	>/dev/null 2>&1 && { echo "nobody was let in"; exit 1; }
echo data >"$MP/f"
"$VMFS" umount "$MP"
sleep 0.2    # the listener writes what the daemon sent last
echo "inner ok"
EOF
rc=0
unshare --mount --propagation private bash "$T_DIR/inner.sh" "$VMFS" "$LUN" "$MP" \
	"$T_STATE" "$T_DIR/vmfsd-mnt.log" "$SYSLOG" "$T_DIR/vmfsd.pid" "$T_DIR" \
	>"$T_DIR/inner.out" 2>&1 || rc=$?
# A vmfsd left by a failure is stopped by PID in the cleanup.
[[ -s $T_DIR/vmfsd.pid ]] && T_PIDS+=("$(cat "$T_DIR/vmfsd.pid")")
expect_eq "the namespace part ($(cat "$T_DIR/inner.out"))" "$rc" 0

# <29> is daemon.notice, <28> daemon.warning (RFC 3164: facility 3).
grep -q "^<29>.*vmfsd\[[0-9]*\]: \[volume $uuid\] mounted volume $uuid" "$SYSLOG" ||
	fail "no mount notice in syslog: $(cat "$SYSLOG")"
grep -q "^<29>.*\[volume $uuid\] unmount of .* asked by pid" "$SYSLOG" ||
	fail "no unmount request notice in syslog: $(cat "$SYSLOG")"
grep -q "^<29>.*\[volume $uuid\] unmounted " "$SYSLOG" ||
	fail "no unmounted notice in syslog: $(cat "$SYSLOG")"
grep -q "^<28>.*\[volume $uuid\] control socket .* refused pid [0-9]* (uid 65534" "$SYSLOG" ||
	fail "no warning about the refused client in syslog: $(cat "$SYSLOG")"
grep -q "heartbeat slot .* lease" "$SYSLOG" &&
	fail "LOG_INFO lines reach syslog: $(cat "$SYSLOG")"
grep -q "Invalid IPC credentials" "$SYSLOG" &&
	fail "libqb's own error about the refused client reaches syslog: $(cat "$SYSLOG")"
grep -q "heartbeat slot .* lease" "$T_DIR/vmfsd-mnt.log" ||
	fail "the daemon log lacks the LOG_INFO lines: $(cat "$T_DIR/vmfsd-mnt.log")"
grep -q "\[volume $uuid\] mounted volume" "$T_DIR/vmfsd-mnt.log" ||
	fail "daemon log lines do not name the volume: $(cat "$T_DIR/vmfsd-mnt.log")"

t_log "PASS"
