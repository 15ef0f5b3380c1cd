#!/usr/bin/env bash
#
# t_grow_online: `vmfs grow MOUNTPOINT` grows a mounted volume online.
#
#   - one host: the LUN file enlarged, `vmfs grow MOUNTPOINT` through the
#     vmfsd's control socket: df grows by exactly the new file blocks, a
#     file larger than the whole old volume fits; grow again says the LUN
#     did not grow;
#   - three hosts (three vmfsd on one LUN file, no corosync): the volume
#     nearly full, the LUN enlarged, `vmfs grow` on B; each host then
#     writes a file larger than the free space before the grow (so each
#     allocates in the new space; C at once, maybe before its tick read
#     the new header), df on A and C shows the new size and their logs say
#     another host grew it, and every host reads the others' files;
#   - a read-only mount is refused with what to do;
#   - a LUN larger than the cluster table allows: grown online to the
#     limit (said on stderr, df matches), then refused naming the limit;
#   - a host that fenced itself (its vmfsd stopped past its lease) is
#     refused with what to do, and nothing is written;
#   - `vmfs grow LUN` while only a host this command cannot reach has it
#     mounted (build/lockhold) is refused, naming it and where to grow;
#   - after unmounting everywhere: fsck -n clean, every file intact.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
HOSTS=(A B C)
SMALL=(--max-hosts 4 --journal-size 1M)

json_field() {
	python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

humount() {
	"$VMFS" umount --state-dir "$(state_of "$1")" "$(mp_of "$1")" ||
		fail "host $1: vmfs umount failed"
}

df_bytes() {
	echo $(($(stat -f -c %b "$1") * $(stat -f -c %S "$1")))
}

free_bytes() {
	echo $(($(stat -f -c %a "$1") * $(stat -f -c %S "$1")))
}

# wait_df H BYTES: host H's df shows BYTES within 20 s.
wait_df() {
	local i got
	for ((i = 0; i < 100; i++)); do
		got=$(df_bytes "$(mp_of "$1")")
		[[ $got == "$2" ]] && return
		sleep 0.2
	done
	fail "host $1: df shows $got bytes 20 s after the grow, expected $2"
}

step "one host: grow MOUNTPOINT through its vmfsd"
make_lun "$LUN" 64M
t_mkfs "$LUN" "${SMALL[@]}" --label t-grow-online
hmount A
a=$(mp_of A)
head -c 2M /dev/urandom >"$a/before.bin"
blocks0=$(df_bytes "$a")
truncate -s 128M "$LUN"
"$VMFS" grow --json "$a" >"$T_DIR/json" 2>"$T_DIR/err" ||
	fail "vmfs grow $a failed: $(cat "$T_DIR/err")"
expect_eq "new size" "$(json_field new_size_bytes <"$T_DIR/json")" 134217728
old_fb=$(json_field old_file_blocks <"$T_DIR/json")
new_fb=$(json_field new_file_blocks <"$T_DIR/json")
fbs=$(json_field file_block_size <"$T_DIR/json")
expect_eq "df growth on the growing host" "$(($(df_bytes "$a") - blocks0))" \
	"$(((new_fb - old_fb) * fbs))"
grep -q "grown online from 67108864 to 134217728 bytes" "$(log_of A)" ||
	fail "host A's log does not say it grew the volume"
big=$((blocks0 / 1048576 + 8))
head -c "${big}M" /dev/urandom >"$a/big-A1.bin" ||
	fail "writing $big MiB (more than the old volume) on A failed"
expect_fail 1 "already uses it; enlarge the LUN first" "$VMFS" grow "$a"

step "three hosts: the volume nearly full, the LUN enlarged, grow on B"
hmount B
hmount C
for h in "${HOSTS[@]}"; do
	[[ $(df_bytes "$(mp_of "$h")") == "$(df_bytes "$a")" ]] ||
		fail "host $h: df $(df_bytes "$(mp_of "$h")") differs from A's"
done
free0=$(free_bytes "$a")
fill=$((free0 / 1048576 - 4))
((fill > 0)) && { head -c "${fill}M" /dev/zero >"$a/fill.bin" || fail "filling the volume on A failed"; }
free0=$(free_bytes "$a")
size1=$(df_bytes "$a")
truncate -s 320M "$LUN"
"$VMFS" grow --json "$(mp_of B)" >"$T_DIR/json" 2>"$T_DIR/err" ||
	fail "vmfs grow on B failed: $(cat "$T_DIR/err")"
expect_eq "new size" "$(json_field new_size_bytes <"$T_DIR/json")" 335544320
size2=$(df_bytes "$(mp_of B)")
((size2 > size1)) || fail "B's df did not grow ($size1 -> $size2)"

step "each host writes a file larger than the free space before the grow"
# C first, at once: it may not have ticked yet, so its allocation takes
# the new geometry itself before it would say the volume is full.
each=$((free0 / 1048576 + 8))
for h in C A B; do
	head -c "${each}M" /dev/urandom >"$T_DIR/$h.src"
	cp "$T_DIR/$h.src" "$(mp_of "$h")/new-$h.bin" ||
		fail "host $h: writing $each MiB (free before the grow: $((free0 >> 20)) MiB) failed"
done
for h in A C; do
	wait_df "$h" "$size2"
	grep -q "another host grew the volume from 134217728 to 335544320 bytes" \
		"$(log_of "$h")" || fail "host $h's log does not say another host grew the volume"
done
for h in "${HOSTS[@]}"; do
	for r in "${HOSTS[@]}"; do
		cmp -s "$T_DIR/$h.src" "$(mp_of "$r")/new-$h.bin" ||
			fail "host $r reads host $h's file differently"
	done
done
sum_a=$(sha256sum <"$a/big-A1.bin")

step "unmounted everywhere: fsck clean, files intact; read-only refused"
for h in "${HOSTS[@]}"; do humount "$h"; done
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after online grows: $(cat "$T_DIR/fsck")"
expect_eq "volume size" "$("$VMFS" info --json "$LUN" | json_field size_bytes)" 335544320
hmount A --ro
expect_eq "A's file after remount" "$(sha256sum <"$a/big-A1.bin")" "$sum_a"
cmp -s "$T_DIR/C.src" "$a/new-C.bin" || fail "C's file differs after remount"
truncate -s 384M "$LUN"
expect_fail 1 "mounted read-only .*cannot grow the volume; run 'vmfs grow' on a host that has it mounted read-write" \
	"$VMFS" grow "$a"
humount A
expect_eq "volume size after the refused grow" \
	"$("$VMFS" info --json "$LUN" | json_field size_bytes)" 335544320

step "online up to the cluster table's limit, then refused with the limit"
make_lun "$LUN" 96M
t_mkfs "$LUN" "${SMALL[@]}" --block-size 64K --max-grow-size 0
max=$("$VMFS" info --json "$LUN" | json_field max_size_bytes)
hmount A
truncate -s 1536M "$LUN"
"$VMFS" grow "$a" >"$T_DIR/out" 2>"$T_DIR/err" || fail "capped online grow failed: $(cat "$T_DIR/err")"
grep -qF "holds at most" "$T_DIR/err" || fail "the capped online grow is not reported: $(cat "$T_DIR/err")"
expect_eq "df after a capped online grow" "$(df_bytes "$a")" \
	"$(($(json_field max_file_blocks < <("$VMFS" grow --dry-run --json "$a" 2>/dev/null || true)) * 65536))"
expect_fail 1 "most its file-block cluster table .* holds: .*--max-grow-size sets more" \
	"$VMFS" grow "$a"
humount A
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after a capped online grow: $(cat "$T_DIR/fsck")"
((max < 1610612736)) || fail "--max-grow-size 0 left room for $max bytes"

step "a fenced host is refused with what to do"
make_lun "$LUN" 64M
t_mkfs "$LUN" "${SMALL[@]}"
hmount A --lease-ms 1000
pid=$(vmfsd_pid_of "$(cd "$a" && pwd -P)") || fail "no vmfsd serves $a"
echo x >"$a/f"
kill -STOP "$pid"
sleep 2.5
kill -CONT "$pid"
t_wait_grep 5 "fenced" "$(log_of A)" || true
truncate -s 128M "$LUN"
expect_fail 1 "this host is fenced .*unmount .* and mount it again, then grow" "$VMFS" grow "$a"
"$VMFS" umount --state-dir "$(state_of A)" "$a" >/dev/null 2>&1 || true
mountpoint -q "$a" && fail "the fenced mount stayed after vmfs umount"
expect_eq "volume size after the refused grow" \
	"$("$VMFS" info --json "$LUN" | json_field size_bytes)" 67108864

step "a LUN only a host out of reach has mounted: refused, grow it there"
LOCKHOLD=$VMFS_BUILD/lockhold
[[ -x $LOCKHOLD ]] || fail "$LOCKHOLD missing: make $VMFS_BUILD/lockhold"
coproc HOLD { exec "$LOCKHOLD" --name far-host "$LUN" "ino:1=ro"; }
T_PIDS+=("$HOLD_PID")
read -r -t 20 _ <&"${HOLD[0]}" || fail "lockhold did not get ready"
expect_fail 1 "heartbeat slot [0-9]+ \\(host far-host" "$VMFS" grow "$LUN"
grep -qF "no vmfsd of this host (in this network namespace) serves it; run 'vmfs grow MOUNTPOINT' on a host that has it mounted" "$T_DIR/err" ||
	fail "the refusal does not say where to grow: $(cat "$T_DIR/err")"
kill -TERM "$HOLD_PID"
wait "$HOLD_PID" || fail "lockhold did not end cleanly"

t_log "PASS"
