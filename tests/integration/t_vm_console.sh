#!/usr/bin/env bash
# t_vm_console: `vmfs vm console` attaches to a running VM's serial
# console through a pty, as a user's terminal would (two vmfsd, A and B,
# on one LUN file; real QEMU under TCG running the test guest, which has
# a busybox shell on ttyS0):
#  - on A, where the VM runs: the guest's output arrives, a command typed
#    into its shell runs there (its result is something only the guest's
#    shell computes), Ctrl-] detaches with exit 0 and the VM keeps
#    running; console.log on the datastore still gets everything,
#    and a second attach works; `reboot -f` and then a kernel panic
#    (sysrq c) typed into the guest reset it in place: the same QEMU
#    runs on, the guest boots again and its counter goes on; `poweroff
#    -f` ends the VM, its status saying the guest powered off;
#  - on B: refused, naming A; --log follows console.log on A while it
#    runs, and on B once it stopped; on a stopped VM: refused, saying so.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/vm_lib.sh
source "$(dirname "$0")/vm_lib.sh"
LUN=$T_DIR/lun

# attach H VMPATH SCRIPT: run `vmfs vm console VMPATH` on host H in a
# pty and play SCRIPT against it (python, see below); the transcript is
# in $T_DIR/console.out.
attach() {
	VMFS_STATE_DIR=$(state_of "$1") python3 - "$VMFS" "$2" "$3" \
		"$T_DIR/console.out" <<'PY'
import os, pty, select, subprocess, sys, time

vmfs, path, script, out = sys.argv[1:5]
master, slave = pty.openpty()
p = subprocess.Popen([vmfs, "vm", "console", path], stdin=slave,
                     stdout=slave, stderr=slave, close_fds=True)
os.close(slave)
seen = b""

def read_after(mark, want, secs):
    global seen
    end = time.time() + secs
    while time.time() < end and want.encode() not in seen[mark:]:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    return want.encode() in seen[mark:]

def read_until(want, secs):
    return read_after(0, want, secs)

def fail(why):
    open(out, "wb").write(seen)
    p.kill()
    sys.exit("console: " + why + "; transcript in " + out)

if not read_until("Ctrl-] detaches", 20):
    fail("no banner")
# The guest prints its counter on the console every 100 ms.
if not read_until("vmfs-guest-counter", 60):
    fail("no guest output arrived")
if script == "shell":
    # Only the guest's shell turns this into 42 (the terminal echo
    # shows the unexpanded text).
    os.write(master, b"echo vmfs-console-$((6 * 7))-ok\r")
    if not read_until("vmfs-console-42-ok", 60):
        fail("the command typed into the guest's shell did not run")
if script == "reboot":
    # A reboot, then a kernel panic, typed into the guest's shell: each
    # time the guest must boot again (its init prints "booted") and its
    # shell take commands again (it starts before the counter runs).
    for cmd, said in ((b"reboot -f\r", None),
                      (b"echo c >/proc/sysrq-trigger\r",
                       b"sysrq triggered crash")):
        mark = len(seen)
        os.write(master, cmd)
        if not read_after(mark, "vmfs-guest: booted", 180):
            fail("the guest did not boot again after %r" % cmd)
        if said and said not in seen[mark:]:
            fail("the guest did not panic after %r" % cmd)
        if not read_after(seen.rindex(b"vmfs-guest: booted"),
                          "vmfs-guest-counter", 60):
            fail("no counter after the guest booted again")

# Press key, wait for the console to say until, and for vmfs vm console
# to end with status 0 (what: what happened, for the messages).
def finish(key, until, what):
    os.write(master, key)
    if not read_until(until, 120):
        fail("no %r after %s" % (until, what))
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        fail("vmfs vm console still runs after " + what)
    open(out, "wb").write(seen)
    sys.exit(0 if rc == 0 else
             "console: exit status %d after %s" % (rc, what))

if script == "poweroff":
    finish(b"poweroff -f\r", "console closed (the VM stopped)",
           "the guest's power-off")
finish(b"\x1d", "[detached", "Ctrl-]")
PY
}

step "mkfs; hosts A and B mount; a VM created and started on A"
vm_two_hosts
vm A create "$a/vms/g1" --memory 256M --disk 16M:thin --accel tcg \
	--kernel "$GUEST/vmlinuz" --initrd "$GUEST/initrd.img" >/dev/null ||
	fail "vmfs vm create failed"
expect_fail 1 "is not running \(stopped\).*console --log" vm A console "$a/vms/g1"
vm_start A "$a/vms/g1"
pid=${QEMU_PIDS[-1]}
c1=$(wait_counter "$a/vms/g1/disk0.img" 0)

step "attach on A: output arrives, a typed command runs in the guest, Ctrl-] detaches"
attach A "$a/vms/g1" shell || fail "$(tail -c 600 "$T_DIR/console.out" | tr -d '\r')"
t_pid_alive "$pid" || fail "QEMU died when the console detached"
expect_eq "state after detaching" "$(field A "$a/vms/g1" state)" running
wait_counter "$a/vms/g1/disk0.img" "$c1" >/dev/null
# The log on the datastore got the session too.
tr -d '\r' <"$a/vms/g1/console.log" | grep -q "^vmfs-console-42-ok$" ||
	fail "console.log lacks the command's output"
n1=$(wc -c <"$a/vms/g1/console.log")
sleep 2
(( $(wc -c <"$a/vms/g1/console.log") > n1 )) ||
	fail "console.log stopped growing after the console detached"

step "attach again: output and Ctrl-]"
attach A "$a/vms/g1" plain || fail "$(tail -c 600 "$T_DIR/console.out" | tr -d '\r')"

step "a reboot and a kernel panic inside the guest reset it in place: the VM keeps running"
boot0=$(dd if="$a/vms/g1/disk0.img" bs=512 count=1 iflag=direct status=none | tr -d '\0' | sed -n 's/^vmfs-guest-boot //p')
c2=$(counter "$a/vms/g1/disk0.img")
attach A "$a/vms/g1" reboot || fail "$(tail -c 600 "$T_DIR/console.out" | tr -d '\r')"
t_pid_alive "$pid" || fail "QEMU $pid ended when its guest rebooted or panicked: $(grep "VM .*ended" "$(log_of A)" | tail -n 1)"
expect_eq "state after a reboot and a panic" "$(field A "$a/vms/g1" state)" running
expect_eq "QEMU pid after a reboot and a panic" "$(field A "$a/vms/g1" pid)" "$pid"
# The counter went on from the disk, and the disk names a new boot.
wait_counter "$a/vms/g1/disk0.img" "$c2" >/dev/null
boot1=$(dd if="$a/vms/g1/disk0.img" bs=512 count=1 iflag=direct status=none | tr -d '\0' | sed -n 's/^vmfs-guest-boot //p')
[[ -n $boot1 && $boot1 != "$boot0" ]] ||
	fail "the disk names the same boot after a reboot and a panic ($boot0)"

# follow_log H VMPATH: what `vmfs vm console --log` on H shows in 3 s.
follow_log() {
	timeout -s INT 3 env VMFS_STATE_DIR="$(state_of "$1")" "$VMFS" vm \
		console --log "$2" >"$T_DIR/log.out" 2>"$T_DIR/log.err" || true
	grep -q "vmfs-guest-counter" "$T_DIR/log.out" ||
		fail "vm console --log on $1 showed no counter: $(tail -c 300 "$T_DIR/log.out") $(cat "$T_DIR/log.err")"
}

step "on B: refused naming A; --log follows the log on A"
expect_fail 1 "runs on host A: attach to its console there" vm B console "$b/vms/g1"
follow_log A "$a/vms/g1"
expect_fail 2 "unknown option '--bogus'" vm A console --bogus "$a/vms/g1"

step "a power-off inside the guest ends the VM; its status says so"
attach A "$a/vms/g1" poweroff || fail "$(tail -c 600 "$T_DIR/console.out" | tr -d '\r')"
wait_state A "$a/vms/g1" stopped
why=$(field A "$a/vms/g1" why)
[[ $why == *"guest powered off"* ]] || fail "the status after a guest power-off says: $why"
[[ -e $a/vms/g1/ha-state.json ]] && fail "a guest power-off left the run record"
vm_start A "$a/vms/g1"

step "stop: the console socket is gone; --log reads the log from B"
vm A stop --force "$a/vms/g1" >/dev/null || fail "vm stop failed"
ls "$(state_of A)"/vm/*.console 2>/dev/null && fail "a console socket outlived its VM"
expect_fail 1 "is not running" vm A console "$a/vms/g1"
follow_log B "$b/vms/g1"
t_log "ok"
