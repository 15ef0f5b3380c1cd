#!/usr/bin/env bash
#
# t_bad_input: the unhappy paths an administrator meets.  Each refusal
# must exit with the documented status, say what is wrong (and what to
# do), and leave the LUN exactly as it was.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
MP2=$T_DIR/mnt2
mkdir -p "$MP" "$MP2"

sum() {
	sha256sum "$1" | cut -d' ' -f1
}

# json_field FIELD.SUB... : a value from `vmfs info --json $LUN`.
json_field() {
	"$VMFS" info --json "$LUN" | python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# poke FILE OFFSET BYTE: overwrite one byte.
poke() {
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes([int(sys.argv[3], 0)]))' "$@"
}

# errno_of OP PATH [PATH2]: the errno name an os call gives (or OK).
errno_of() {
	python3 - "$@" <<'EOF'
import errno, os, sys
op, a = sys.argv[1], sys.argv[2]
try:
    if op == "create":
        os.close(os.open(a, os.O_CREAT | os.O_WRONLY, 0o644))
    elif op == "mkdir":
        os.mkdir(a)
    elif op == "symlink":
        os.symlink("target", a)
    elif op == "rename":
        os.rename(a, sys.argv[3])
    elif op == "stat":
        os.stat(a)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
}

step "usage errors: exit 2 and name the culprit"
expect_fail 2 "unknown option '--bogus'" "$VMFS" --bogus
grep -q "see 'vmfs --help'" "$T_DIR/err" || fail "no hint at vmfs --help: $(cat "$T_DIR/err")"
expect_fail 2 "unknown command 'bogus'" "$VMFS" bogus
expect_fail 2 "unknown option '--bogus'" "$VMFS" mkfs --bogus "$LUN"
expect_fail 2 "unknown option '-Z'" "$VMFS" mount -Z "$LUN" "$MP"
expect_fail 2 "'--block-size' needs a value" "$VMFS" mkfs "$LUN" --block-size
expect_fail 2 "--block-size 3M: must be a power of two" "$VMFS" mkfs --block-size 3M "$LUN"
expect_fail 2 "--journal-size 12Q: not a size" "$VMFS" mkfs --journal-size 12Q "$LUN"
expect_fail 2 "missing LUN" "$VMFS" info
expect_fail 2 "unknown subcommand 'frob'" "$VMFS" disk frob
# Commands with subcommands share one dispatcher (cli/dispatch.c): the
# same answers, naming the group's subcommands and the running command.
for grp in "disk create|create, info, set, import, clone, extend or inflate" \
	"vm start|create, start, stop, status, list, console, migrate, destroy or set" \
	"journal dump|dump or replay" "cluster config|config"; do
	IFS='|' read -r cmd_s1 list <<<"$grp"
	read -r cmd s1 <<<"$cmd_s1"
	expect_fail 2 "^vmfs $cmd: missing subcommand \($list\)" "$VMFS" "$cmd"
	expect_fail 2 "^vmfs $cmd: unknown subcommand 'frob' \($list\)" "$VMFS" "$cmd" frob
	expect_fail 2 "^vmfs $cmd: unknown option '--frob'" "$VMFS" "$cmd" --frob
	expect_fail 2 "^vmfs $cmd $s1: unknown option '--frob'" "$VMFS" "$cmd" "$s1" --frob
	grep -q "see 'vmfs $cmd $s1 --help'" "$T_DIR/err" ||
		fail "no hint at vmfs $cmd $s1 --help: $(cat "$T_DIR/err")"
	"$VMFS" "$cmd" -h | grep -q "usage: vmfs $cmd" || fail "vmfs $cmd -h prints no usage"
done
# Counts are digits only, in range (no atoi: garbage is not 0), checked
# before anything looks for the VM.
for t in abc 5x -1 "" 3601 " 5"; do
	expect_fail 2 "^vmfs vm stop: --timeout $t: must be a number of seconds from 0 to 3600" \
		"$VMFS" vm stop --timeout "$t" "$T_DIR/novm"
done
expect_fail 2 "^vmfs vm create: --cpus x: must be a number of CPUs from 1 to 64" \
	"$VMFS" vm create --cpus x "$T_DIR/novm"
expect_fail 2 "^vmfs vm create: --cpus 0: must be a number of CPUs from 1 to 64" \
	"$VMFS" vm create --cpus 0 "$T_DIR/novm"
expect_fail 2 "bogus" "$VMFSD" --bogus
# vmfs mount and vmfsd read a LUN spec as lun_open does (lun_spec_parse):
# an empty path is not the working directory.
expect_fail 2 "LUN '': LUN name not understood" "$VMFS" mount "" "$MP"
expect_fail 2 "LUN 'file:': LUN name not understood" "$VMFS" mount file: "$MP"
expect_fail 2 "--lun 'file:': not a usable LUN name" "$VMFSD" --lun file: --mountpoint "$MP"
for cmd in mkfs info mount umount disk cluster help; do
	"$VMFS" "$cmd" --help >"$T_DIR/out" || fail "vmfs $cmd --help failed"
	grep -q "usage: vmfs $cmd" "$T_DIR/out" || fail "vmfs $cmd --help prints no usage"
done
"$VMFS" --version | grep -qE '^vmfs [0-9]' || fail "vmfs --version"

step "a LUN of random bytes: bad magic at offset 0, nothing written"
head -c $((64 << 20)) /dev/urandom >"$LUN"
magic=$(od -An -tx4 -N4 "$LUN" | tr -d ' ')
before=$(sum "$LUN")
expect_fail 1 "not a vmfs volume \\(bad magic 0x$magic at offset 0\\); run 'vmfs mkfs" \
	"$VMFS" info "$LUN"
expect_fail 1 "bad magic 0x$magic at offset 0" "$VMFS" mount --state-dir "$T_STATE" "$LUN" "$MP"
mountpoint -q "$MP" && fail "a random LUN got mounted"
# The daemon on its own must refuse it too, through its readiness fd.
rc=0
timeout 60 "$VMFSD" --lun "$LUN" --mountpoint "$MP" --state-dir "$T_STATE" \
	--foreground --ready-fd 3 3>"$T_DIR/ready" 2>"$T_DIR/err" || rc=$?
((rc != 0 && rc != 124)) || fail "vmfsd on a random LUN: exit status $rc"
grep -q '^error: ' "$T_DIR/ready" || fail "vmfsd wrote no 'error:' line: $(cat "$T_DIR/ready")"
expect_eq "random LUN after mount attempts" "$(sum "$LUN")" "$before"

step "mkfs on a LUN that is too small: says how much is needed, writes nothing"
make_lun "$LUN" 8M
before=$(sum "$LUN")
expect_fail 1 "is 8388608 bytes .*needs at least [0-9]+ bytes.*grow the LUN or lower --max-hosts/--journal-size" \
	"$VMFS" mkfs "$LUN"
expect_eq "small LUN after mkfs" "$(sum "$LUN")" "$before"

step "mkfs over an existing volume needs --force"
make_lun "$LUN" 512M
t_mkfs "$LUN" --label bad-input --max-hosts 4 --journal-size 1M
uuid=$(json_field uuid)
before=$(sum "$LUN")
expect_fail 1 "already holds a vmfs volume \\(label 'bad-input', uuid $uuid\\).*--force" \
	"$VMFS" mkfs --max-hosts 4 --journal-size 1M "$LUN"
expect_eq "volume after a refused mkfs" "$(sum "$LUN")" "$before"
t_mkfs "$LUN" --force --label bad-input --max-hosts 4 --journal-size 1M
[[ $(json_field uuid) != "$uuid" ]] || fail "mkfs --force kept the old uuid"

step "a header from a newer format major version"
backup=$(json_field areas.backup_header.offset)
cp "$LUN" "$T_DIR/lun.orig"
poke "$LUN" 4 4   # major 4: newer than this software (3)
poke "$LUN" $((backup + 4)) 4
expect_fail 1 "newer" "$VMFS" info "$LUN"
expect_fail 1 "newer" "$VMFS" mount --state-dir "$T_STATE" "$LUN" "$MP"
mountpoint -q "$MP" && fail "a volume of a newer format got mounted"
cp "$T_DIR/lun.orig" "$LUN"

step "a damaged primary header with a good backup: info warns and suggests fsck"
poke "$LUN" $((0x30)) 0x58
"$VMFS" info "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" ||
	fail "info with a good backup header failed: $(cat "$T_DIR/err")"
grep -qiE "primary .*damaged.*backup.*fsck" "$T_DIR/err" ||
	fail "info does not report the damaged primary: $(cat "$T_DIR/err")"
cp "$T_DIR/lun.orig" "$LUN"

step "mount points: missing, not mounted"
expect_fail 1 "mount point .*/nope does not exist" "$VMFS" mount --state-dir "$T_STATE" "$LUN" "$T_DIR/nope"
expect_fail 1 "is not mounted" "$VMFS" umount --state-dir "$T_STATE" "$MP"

step "names longer than 255 bytes: ENAMETOOLONG"
t_mount "$LUN" "$MP"
n255=$(printf 'n%.0s' {1..255})
n256=${n255}x
expect_eq "create, 255 bytes" "$(errno_of create "$MP/$n255")" OK
expect_eq "create, 256 bytes" "$(errno_of create "$MP/$n256")" ENAMETOOLONG
expect_eq "mkdir, 256 bytes" "$(errno_of mkdir "$MP/$n256")" ENAMETOOLONG
expect_eq "symlink, 256 bytes" "$(errno_of symlink "$MP/$n256")" ENAMETOOLONG
expect_eq "rename to 256 bytes" "$(errno_of rename "$MP/$n255" "$MP/$n256")" ENAMETOOLONG
expect_eq "lookup, 256 bytes" "$(errno_of stat "$MP/$n256")" ENAMETOOLONG
rm "$MP/$n255"

step "a second mount of the same volume by the same host"
expect_fail 1 "already mounted at $MP" "$VMFS" mount --state-dir "$T_STATE" "$LUN" "$MP2"
mountpoint -q "$MP2" && fail "the volume got mounted twice"
# The daemon's own check (vmfsd_host_claim), without the CLI's.
T_MOUNTS+=("$MP2")
rc=0
timeout 60 "$VMFSD" --lun "$LUN" --mountpoint "$MP2" --state-dir "$T_STATE" \
	--foreground --ready-fd 3 3>"$T_DIR/ready" 2>"$T_DIR/err" || rc=$?
((rc != 0 && rc != 124)) || fail "vmfsd mounting a volume twice: exit status $rc"
grep -q "^error: .*$MP" "$T_DIR/ready" ||
	fail "vmfsd's refusal does not name $MP: $(cat "$T_DIR/ready")"
mountpoint -q "$MP2" && fail "vmfsd mounted the volume twice"

step "fill the volume until ENOSPC"
mkdir "$MP/full"
head -c $((16 << 20)) /dev/urandom >"$T_DIR/src"
n=0
while :; do
	if ! dd if="$T_DIR/src" of="$MP/full/f$n" bs=1M oflag=direct status=none 2>"$T_DIR/err"; then
		grep -q "No space left" "$T_DIR/err" || fail "dd failed, but not with ENOSPC: $(cat "$T_DIR/err")"
		rm -f "$MP/full/f$n"
		break
	fi
	n=$((n + 1))
	((n < 100)) || fail "a 512 MiB volume took $n x 16 MiB files"
done
((n >= 10)) || fail "only $n x 16 MiB files fit on a 512 MiB volume"
t_log "$n files of 16 MiB fit"
(cd "$MP/full" && sha256sum f*) >"$T_DIR/sums"
(cd "$MP/full" && sha256sum --quiet -c "$T_DIR/sums") || fail "files written before ENOSPC changed"

step "umount, mount: everything written before ENOSPC is intact"
t_umount "$MP"
t_mount "$LUN" "$MP"
(cd "$MP/full" && sha256sum --quiet -c "$T_DIR/sums") || fail "files written before ENOSPC changed across remount"

step "deleting a file frees space for a new one"
rm "$MP/full/f0"
sync
dd if="$T_DIR/src" of="$MP/full/again" bs=1M oflag=direct status=none ||
	fail "no room for 16 MiB after deleting a 16 MiB file"
cmp "$T_DIR/src" "$MP/full/again" || fail "the file written after ENOSPC reads back wrong"
t_umount "$MP"
t_log "PASS"
