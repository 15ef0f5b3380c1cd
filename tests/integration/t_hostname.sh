#!/usr/bin/env bash
#
# t_hostname: `vmfs mount --host-name NAME` and `--lock-primitive`.
# Two hosts on one machine (two state directories) mount two volumes
# under different names: `vmfs hosts` shows each name, `vmfs info
# MOUNTPOINT` shows name and primitive, the name outlives the mount (a
# remount without the option keeps it), a new name renames the host with
# a notice, and without any name the machine's hostname is used.  Bad
# names and primitives are refused with the rule.  --lock-primitive
# reserve on the file backend mounts and its heartbeat renews.  (A LUN
# that lacks a primitive cannot be made from the command line: the unit
# test hb/forced_primitive covers that refusal.)
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN1=$T_DIR/lun1
LUN2=$T_DIR/lun2
MP1=$T_DIR/mnt1
MP2=$T_DIR/mnt2
STATE1=$T_DIR/state1
STATE2=$T_DIR/state2
NAME64=$(printf 'h%.0s' {1..64})
# mount(8)'s helper is vmfs under the name mount.vmfs.
HELPER=$T_DIR/mount.vmfs
ln -s "$VMFS" "$HELPER"

# hosts_of LUN: "slot state hostname" per slot of `vmfs hosts --json`.
hosts_of() {
	"$VMFS" hosts --json "$1" | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    print(h["slot"], h["liveness"], h["hostname"])'
}

# live MP FIELD...: fields of `vmfs info --json MP`'s "vmfsd" object
# (a dotted name reaches into "heartbeat").
live() {
	local mp=$1
	shift
	"$VMFS" info --json "$mp" | python3 -c '
import json, sys
d = json.load(sys.stdin)["vmfsd"]
out = []
for f in sys.argv[1:]:
    v = d
    for k in f.split("."):
        v = v[k]
    out.append(str(v))
print(" ".join(out))' "$@"
}

step "mkfs two volumes"
make_lun "$LUN1" 1G
make_lun "$LUN2" 1G
t_mkfs "$LUN1" --max-hosts 4 --journal-size 1M
t_mkfs "$LUN2" --max-hosts 4 --journal-size 1M

step "bad names and primitives are refused with the rule"
mkdir -p "$MP1"
for bad in "two words" "a/b" "" "$NAME64"x $'tab\there'; do
	expect_fail 2 "--host-name .*1 to 64 printable ASCII characters, without spaces or '/'" \
		"$VMFS" mount --state-dir "$STATE1" --host-name "$bad" "$LUN1" "$MP1"
done
expect_fail 2 "--lock-primitive 'scsi': must be ats, reserve or auto" \
	"$VMFS" mount --state-dir "$STATE1" --lock-primitive scsi "$LUN1" "$MP1"
expect_fail 2 "--host-name 'a b': a host name is 1 to 64" \
	"$VMFSD" --lun "$LUN1" --mountpoint "$MP1" --state-dir "$STATE1" \
	--foreground --host-name "a b"
expect_fail 2 "--lock-primitive 'x': must be ats, reserve or auto" \
	"$VMFSD" --lun "$LUN1" --mountpoint "$MP1" --state-dir "$STATE1" \
	--foreground --lock-primitive x
expect_fail 32 "--host-name 'a/b': a host name is 1 to 64" \
	"$HELPER" "$LUN1" "$MP1" -o "host-name=a/b,state-dir=$STATE1"
mountpoint -q "$MP1" && fail "a refused mount mounted $MP1"
[[ ! -e $STATE1/host.tch ]] || fail "a refused mount created the host state"

step "two hosts on one machine, each named"
t_mount "$LUN1" "$MP1" --state-dir "$STATE1" --host-name esx-01
t_mount "$LUN2" "$MP2" --state-dir "$STATE2" --host-name "$NAME64" \
	--lock-primitive reserve
expect_eq "hosts of volume 1" "$(hosts_of "$LUN1")" "0 live esx-01"
expect_eq "hosts of volume 2 (a name filling the slot's 64 bytes)" \
	"$(hosts_of "$LUN2")" "0 live $NAME64"
grep -qE "^0 +live +esx-01 " <<<"$("$VMFS" hosts "$LUN1")" ||
	fail "vmfs hosts text lacks esx-01: $("$VMFS" hosts "$LUN1")"
expect_eq "info of mount 1" "$(live "$MP1" host_name heartbeat.lock_primitive)" \
	"esx-01 ats"
expect_eq "info of mount 2" "$(live "$MP2" host_name heartbeat.lock_primitive)" \
	"$NAME64 reserve"
out=$("$VMFS" info "$MP2")
grep -qE "^vmfsd .*host $NAME64 \([0-9a-f-]{36}\)" <<<"$out" ||
	fail "info text lacks the host name: $out"
grep -qE "^heartbeat .*lock primitive reserve," <<<"$out" ||
	fail "info text lacks the primitive: $out"
grep -qE "mounted volume .*: host esx-01 \([0-9a-f-]{36}\), lock primitive ats" \
	"$T_DIR/vmfsd-mnt1.log" || fail "mount log line of mount 1: $(cat "$T_DIR/vmfsd-mnt1.log")"
grep -qE "lock primitive reserve" "$T_DIR/vmfsd-mnt2.log" ||
	fail "mount log line of mount 2: $(cat "$T_DIR/vmfsd-mnt2.log")"

step "the heartbeat renews through RESERVE"
r1=$(t_info_rows "$LUN2" hosts renewals)
sleep 4.5
r2=$(t_info_rows "$LUN2" hosts renewals)
((r2 >= r1 + 2)) || fail "renewals went from $r1 to $r2 in 4.5 s (renewal every 2 s)"
expect_eq "volume 2 after renewals" "$(hosts_of "$LUN2")" "0 live $NAME64"
{ echo data >"$MP2/f" && sync -f "$MP2/f"; } || fail "writing on the reserve mount"

step "the name persists across a remount without the option"
t_umount "$MP1"
t_mount "$LUN1" "$MP1" --state-dir "$STATE1"
expect_eq "hosts after remount" "$(hosts_of "$LUN1")" "0 live esx-01"
expect_eq "info after remount" "$(live "$MP1" host_name heartbeat.lock_primitive)" \
	"esx-01 ats"

step "mount.vmfs -o host-name= renames the host, with a notice"
t_umount "$MP1"
"$HELPER" "$LUN1" "$MP1" \
	-o "state-dir=$STATE1,host-name=esx-01b,lock-primitive=ats,log-file=$T_DIR/vmfsd-mnt1.log" ||
	fail "mount.vmfs with host-name failed"
T_MOUNTS+=("$(cd "$MP1" && pwd -P)")
T_PIDS+=("$(vmfsd_pid_of "$(cd "$MP1" && pwd -P)")")
expect_eq "hosts after the rename" "$(hosts_of "$LUN1")" "0 live esx-01b"
grep -q "renamed from esx-01 to esx-01b" "$T_DIR/vmfsd-mnt1.log" ||
	fail "no rename notice: $(cat "$T_DIR/vmfsd-mnt1.log")"
t_umount "$MP1"
t_mount "$LUN1" "$MP1" --state-dir "$STATE1"
expect_eq "the new name is kept" "$(live "$MP1" host_name)" "esx-01b"
t_umount "$MP1"

step "without a name the machine's hostname is used"
t_mount "$LUN1" "$MP1" --state-dir "$T_DIR/state3"
expect_eq "default name" "$(live "$MP1" host_name)" "$(hostname)"
t_umount "$MP1"
t_umount "$MP2"
t_log "ok"
