# shellcheck shell=bash
#
# The reference volume of the fsck corpus (t_fsck_corpus.sh) and of the
# random-damage test (t_fsck_random.sh): one small volume with something
# of every kind the checker must know, made through a real mount so the
# engine lays it out.  Source after tests/integration/lib.sh.
#
#   fsck_ref_build IMG MANIFEST    make IMG (2 GiB sparse) and write the
#                                  manifest of its files to MANIFEST
#   fsck_manifest MP OUT           manifest of the mounted volume at MP
#   fsck_manifest_check REF NEW [EXCLUDED_PATH...]
#                                  every entry of REF not at or below an
#                                  excluded path is in NEW, unchanged
#
# What is on it (1 MiB file blocks, 64 KiB small blocks):
#   inline files (< 2 KiB, and exactly 2 KiB), small-block files (100 KiB,
#   300 KiB), file-block files (3 MiB, 5 MiB + 12345), a 1 GiB thin disk
#   with five 64 KiB writes far apart (single and double indirect pointer
#   blocks), a zeroedthick and an eagerzeroedthick disk, each partly
#   written, nested directories, a directory of 30 entries (3 chunks),
#   an empty directory, relative, absolute and long (small-block)
#   symlinks, a file with three hard links, xattrs on files and a
#   directory, a FIFO, and a deleted file (a freed inode and blocks).

FSCK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fsck_manifest() {
	python3 "$FSCK_DIR/manifest.py" make "$1" >"$2"
}

fsck_manifest_check() {
	python3 "$FSCK_DIR/manifest.py" check "$@"
}

# fsck_write FILE OFFSET BYTES: BYTES random bytes at OFFSET, in place.
fsck_write() {
	head -c "$3" /dev/urandom |
		dd of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}

fsck_ref_build() {
	local img=$1 manifest=$2 mp i long
	mp=$(dirname "$img")/ref-mnt

	make_lun "$img" 2G
	t_mkfs "$img" --label fsck-ref --max-hosts 4 --journal-size 1M
	t_mount "$img" "$mp"

	mkdir -p "$mp/d1/d2/d3" "$mp/empty" "$mp/many" "$mp/disks"
	head -c 100 /dev/urandom >"$mp/inline.txt"
	head -c 1500 /dev/urandom >"$mp/d1/inline2"
	head -c 2048 /dev/urandom >"$mp/d1/d2/inline-full"
	head -c $((100 * 1024)) /dev/urandom >"$mp/small.bin"
	head -c $((300 * 1024)) /dev/urandom >"$mp/d1/small2.bin"
	head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom >"$mp/big.bin"
	head -c $((3 * 1024 * 1024)) /dev/urandom >"$mp/d1/d2/d3/big2.bin"

	# Thin 1 GiB disk: block 0 direct, 300 and 600 under the single
	# indirect block, 900 and 1023 under the double indirect one.
	"$VMFS" disk create --size 1G --type thin "$mp/disks/sparse.vmdk" >/dev/null
	for i in 0 300 600 900 1023; do
		fsck_write "$mp/disks/sparse.vmdk" $((i * 1024 * 1024 + 4096)) 65536
	done
	"$VMFS" disk create --size 8M --type zeroedthick "$mp/disks/zt.vmdk" >/dev/null
	fsck_write "$mp/disks/zt.vmdk" $((3 * 1024 * 1024)) $((100 * 1024))
	"$VMFS" disk create --size 4M --type eagerzeroedthick "$mp/disks/ezt.vmdk" \
		>/dev/null 2>&1
	fsck_write "$mp/disks/ezt.vmdk" $((1024 * 1024 + 512)) 70000

	ln -s inline.txt "$mp/link-rel"
	ln -s /nonexistent/absolute/target "$mp/d1/link-abs"
	long=$(printf 'long/%.0s' {1..600})
	ln -s "$long" "$mp/d1/link-long"

	head -c $((200 * 1024)) /dev/urandom >"$mp/hard-src"
	ln "$mp/hard-src" "$mp/d1/hard1"
	ln "$mp/hard-src" "$mp/d1/d2/hard2"

	setfattr -n user.color -v blue "$mp/small.bin"
	setfattr -n user.blob -v "0x$(head -c 200 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
		"$mp/small.bin"
	setfattr -n user.note -v "inline file" "$mp/inline.txt"
	setfattr -n user.dir -v yes "$mp/d1"
	mkfifo "$mp/d1/fifo"

	for i in $(seq -w 0 29); do
		echo "file $i" >"$mp/many/f$i"
	done

	head -c $((1024 * 1024 + 5)) /dev/urandom >"$mp/gone"
	rm "$mp/gone"

	sync
	fsck_manifest "$mp" "$manifest"
	t_umount "$mp"
}
