#!/usr/bin/env bash
#
# t_grow: `vmfs grow LUN` after the LUN was enlarged, through the command
# and a FUSE mount.
#
#   - mounted here: the mount point and the LUN go to the mounting vmfsd
#     (online grow, t_grow_online.sh; here a dry run); a directory that is
#     no vmfs mount point is refused;
#   - refused for a LUN that did not grow ("already uses it; enlarge the
#     LUN first") and for one that shrank under the volume (both sizes,
#     what to do); the LUN is left byte for byte as it was;
#   - --dry-run and --json say what would change and write nothing;
#   - grown: before/after sizes printed, fsck -n clean, every file reads
#     back with its checksum, df shows exactly the new file blocks, and a
#     file larger than the whole old volume fits and survives a remount;
#   - mkfs leaves room to grow 16x (info and mkfs say how far), a grow
#     past it is capped and then refused, --max-grow-size 0 leaves none.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

LUN=$T_DIR/lun
MP=$T_DIR/mnt
mkdir -p "$MP"
SMALL=(--max-hosts 4 --journal-size 1M)

sum() {
	sha256sum "$1" | cut -d' ' -f1
}

# The checksums of every file under the mount point, in name order.
tree_sums() {
	(cd "$MP" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}

json_field() {
	python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

step "a 96 MiB volume with files"
make_lun "$LUN" 96M
t_mkfs "$LUN" "${SMALL[@]}" --label t-grow
t_mount "$LUN" "$MP"
head -c 3M /dev/urandom >"$MP/disk.img"
mkdir "$MP/vm1"
head -c 70000 /dev/urandom >"$MP/vm1/small.bin"
echo "config" >"$MP/vm1/vm1.cfg"
ln -s vm1/vm1.cfg "$MP/link"
tree_sums >"$T_DIR/sums"
bsize=$(stat -f -c %S "$MP")
blocks0=$(stat -f -c %b "$MP")

step "mounted: the mount point and the LUN go to the mounting vmfsd"
truncate -s 192M "$LUN"
"$VMFS" grow --dry-run "$MP" >"$T_DIR/out" 2>"$T_DIR/err" ||
	fail "grow --dry-run of the mount point failed: $(cat "$T_DIR/err")"
grep -qE "would grow .*96 MiB -> 192 MiB" <(tr '\n' ' ' <"$T_DIR/out") ||
	fail "grow --dry-run MOUNTPOINT does not say what it would do: $(cat "$T_DIR/out")"
"$VMFS" grow --dry-run "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" ||
	fail "grow --dry-run of the mounted LUN failed: $(cat "$T_DIR/err")"
grep -qF "is mounted on this host at $(cd "$MP" && pwd -P): its vmfsd grows it online" "$T_DIR/err" ||
	fail "grow LUN does not say the mounting vmfsd grows it: $(cat "$T_DIR/err")"
expect_fail 1 "is a directory but not a vmfs mount point" "$VMFS" grow "$T_DIR"
expect_eq "volume size after the dry runs" \
	"$("$VMFS" info --json "$LUN" | json_field size_bytes)" 100663296
t_umount "$MP"

step "a LUN that did not grow: refused, nothing written"
truncate -s 96M "$LUN"
before=$(sum "$LUN")
expect_fail 1 "LUN .* is 100663296 bytes \\(96 MiB\\), the volume already uses it; enlarge the LUN first \\(truncate -s / lvextend / the array's tool\\)" \
	"$VMFS" grow "$LUN"
expect_eq "LUN after the refused grow" "$(sum "$LUN")" "$before"

step "enlarged to 192 MiB: --dry-run and --json write nothing"
truncate -s 192M "$LUN"
before=$(sum "$LUN")
"$VMFS" grow --dry-run "$LUN" >"$T_DIR/out" || fail "grow --dry-run failed"
grep -qE "would grow .*96 MiB -> 192 MiB" <(tr '\n' ' ' <"$T_DIR/out") ||
	fail "grow --dry-run does not say what it would do: $(cat "$T_DIR/out")"
"$VMFS" grow --dry-run --json "$LUN" >"$T_DIR/json" || fail "grow --dry-run --json failed"
expect_eq "json new_size_bytes" "$(json_field new_size_bytes <"$T_DIR/json")" 201326592
expect_eq "json old_size_bytes" "$(json_field old_size_bytes <"$T_DIR/json")" 100663296
old_fb=$(json_field old_file_blocks <"$T_DIR/json")
new_fb=$(json_field new_file_blocks <"$T_DIR/json")
fbs=$(json_field file_block_size <"$T_DIR/json")
expect_eq "LUN after the dry runs" "$(sum "$LUN")" "$before"

step "grow: before and after sizes, fsck clean"
"$VMFS" grow "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" ||
	fail "vmfs grow failed: $(cat "$T_DIR/err")"
grep -qE "grew the vmfs volume" "$T_DIR/out" &&
	grep -qE "96 MiB -> 192 MiB \\(100663296 -> 201326592 bytes\\)" "$T_DIR/out" &&
	grep -qE "$old_fb -> $new_fb x 1 MiB" "$T_DIR/out" ||
	fail "grow output lacks the sizes: $(cat "$T_DIR/out")"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after grow: $(cat "$T_DIR/fsck")"
expect_eq "volume size" "$("$VMFS" info --json "$LUN" | json_field size_bytes)" 201326592
expect_fail 1 "is 201326592 bytes .*already uses it" "$VMFS" grow "$LUN"

step "mounted again: the files, df, and a file larger than the old volume"
t_mount "$LUN" "$MP"
expect_eq "files after grow" "$(tree_sums)" "$(cat "$T_DIR/sums")"
blocks1=$(stat -f -c %b "$MP")
expect_eq "df growth in bytes" "$(((blocks1 - blocks0) * bsize))" "$(((new_fb - old_fb) * fbs))"
big_mib=$((blocks0 * bsize / 1048576 + 16))
head -c "${big_mib}M" /dev/urandom >"$MP/big.bin" ||
	fail "writing $big_mib MiB (more than the old volume's $((blocks0 * bsize >> 20)) MiB) failed"
tree_sums >"$T_DIR/sums"
t_umount "$MP"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after the fill: $(cat "$T_DIR/fsck")"
t_mount "$LUN" "$MP"
expect_eq "files after remount" "$(tree_sums)" "$(cat "$T_DIR/sums")"
t_umount "$MP"

step "a LUN that shrank under the volume: refused with both sizes"
cp --sparse=always "$LUN" "$T_DIR/copy"
truncate -s 150M "$T_DIR/copy"
before=$(sum "$T_DIR/copy")
expect_fail 1 "is 157286400 bytes \\(150 MiB\\) but the volume on it is 201326592 bytes .*give the LUN back at least 201326592 bytes" \
	"$VMFS" grow "$T_DIR/copy"
expect_eq "shrunk LUN after the refused grow" "$(sum "$T_DIR/copy")" "$before"
rm -f "$T_DIR/copy"

step "room to grow 16x: 64 KiB blocks, where the table's padding alone holds 1 GiB"
# 96 MiB x 16 = 1.5 GiB: past the padding, so only mkfs's reservation
# lets it grow that far.  vmfs info and the mkfs summary say the limit.
make_lun "$LUN" 96M
t_mkfs "$LUN" "${SMALL[@]}" --block-size 64K
max=$("$VMFS" info --json "$LUN" | json_field max_size_bytes)
((max >= 1610612736)) || fail "info max_size_bytes $max, below 16 x 96 MiB"
grep -qE "grows to at most +[0-9.]+ GiB \($max bytes" "$T_DIR/mkfs.out" ||
	fail "mkfs does not say how far the volume grows: $(cat "$T_DIR/mkfs.out")"
"$VMFS" info "$LUN" | grep -qE "^grows to at most +[0-9.]+ GiB" ||
	fail "vmfs info does not show the grow limit"
truncate -s 1536M "$LUN"
"$VMFS" grow "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" ||
	fail "growing 96 MiB to 1.5 GiB failed: $(cat "$T_DIR/err")"
grep -qF "96 MiB -> 1.5 GiB" "$T_DIR/out" || fail "grow output: $(cat "$T_DIR/out")"
[[ ! -s $T_DIR/err ]] || fail "a 16x grow was capped: $(cat "$T_DIR/err")"
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after a 16x grow: $(cat "$T_DIR/fsck")"
truncate -s $((max * 2)) "$LUN"
"$VMFS" grow "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" || fail "grow to the limit failed: $(cat "$T_DIR/err")"
grep -qF "holds at most" "$T_DIR/err" || fail "a grow past the limit is not reported: $(cat "$T_DIR/err")"
expect_fail 1 "most its file-block cluster table .* holds: .*--max-grow-size sets more" \
	"$VMFS" grow "$LUN"

step "--max-grow-size 0: no room beyond the padding; bad sizes refused"
make_lun "$LUN" 96M
t_mkfs "$LUN" "${SMALL[@]}" --block-size 64K --max-grow-size 0
max0=$("$VMFS" info --json "$LUN" | json_field max_size_bytes)
((max0 < max && max0 <= 1073741824 + 100663296)) ||
	fail "--max-grow-size 0: grows to $max0 bytes, default $max"
truncate -s 1536M "$LUN"
"$VMFS" grow "$LUN" >"$T_DIR/out" 2>"$T_DIR/err" || fail "grow failed: $(cat "$T_DIR/err")"
grep -qF "holds at most" "$T_DIR/err" || fail "the capped grow is not reported: $(cat "$T_DIR/err")"
expect_eq "size after a capped grow" "$("$VMFS" info --json "$LUN" | json_field size_bytes)" 1610612736
"$VMFS" fsck -n "$LUN" >"$T_DIR/fsck" 2>&1 || fail "fsck -n after a capped grow: $(cat "$T_DIR/fsck")"
expect_fail 2 "--max-grow-size 9E: too large|--max-grow-size 9E: must be between" \
	"$VMFS" mkfs --force --max-grow-size 9E "$LUN"
expect_fail 2 "--max-grow-size lots: not a size" "$VMFS" mkfs --force --max-grow-size lots "$LUN"

t_log "PASS"
