# What the kernel caches, seen from another host: sourced by t_kcache
# (a host alone, then another host mounts), t_cluster_locks (locks kept
# as a cache over the fast path) and t_disk_asks (asks on the disk).  Each
# change fails the test if the first host's kernel still answers from
# what it kept.  Alone its timeouts are 30 s; shared they are 1 s, so a
# test of a sharing host sets KC_FRESH_S: before each change, after that
# many seconds (past the expiry of the last grant, and past a window of
# turns: 6 s on the disk), the first host looks the name up again, and
# its kernel keeps it afresh just before the other host changes it.

KC_NAMES="gone dir chm src dst grow lnk"

# kc_prepare DIR: make the names, rename one over another, and look each
# up and stat it twice (the second round is what the kernel answers
# alone, if it may keep them).
kc_prepare() {
	local d=$1 f
	mkdir "$d"
	for f in $KC_NAMES; do
		echo "$f" >"$d/$f"
	done
	mv "$d/dst" "$d/dst.tmp"
	mv "$d/dst.tmp" "$d/dst"
	for f in $KC_NAMES $KC_NAMES; do
		stat "$d/$f" >/dev/null || fail "stat $d/$f"
	done
}

# kc_fresh PATH: with KC_FRESH_S, wait that long and look PATH up.
kc_fresh() {
	[[ -n ${KC_FRESH_S:-} ]] || return 0
	sleep "$KC_FRESH_S"
	stat "$1" >/dev/null || fail "stat $1"
}

# kc_changes LABEL A B: B (the same directory on another host) changes
# each name kc_prepare made in A; A must see each change at once.
kc_changes() {
	local l=$1 a=$2 b=$3
	kc_fresh "$a/gone"
	rm "$b/gone"
	[[ -e $a/gone ]] && fail "$l: a file removed on the other host is still there"
	kc_fresh "$a/dir"
	rm "$b/dir"
	mkdir "$b/dir"
	[[ -d $a/dir ]] || fail "$l: a file the other host replaced by a directory is not one"
	kc_fresh "$a/chm"
	chmod 0600 "$b/chm"
	expect_eq "$l: mode of a file the other host changed" "$(stat -c %a "$a/chm")" 600
	echo moved >"$b/src.new"
	kc_fresh "$a/dst"
	mv "$b/src.new" "$b/dst"
	expect_eq "$l: a name the other host renamed over" "$(cat "$a/dst")" moved
	kc_fresh "$a/src"
	mv "$b/src" "$b/src.away"
	[[ -e $a/src ]] && fail "$l: a name the other host renamed away is still there"
	kc_fresh "$a/grow"
	dd if=/dev/zero of="$b/grow" bs=4096 count=3 conv=notrunc status=none
	expect_eq "$l: size of a file the other host grew" "$(stat -c %s "$a/grow")" 12288
	kc_fresh "$a/lnk"
	ln "$b/lnk" "$b/lnk2"
	expect_eq "$l: links of a file the other host linked again" "$(stat -c %h "$a/lnk")" 2
}
