# What the kernel caches, seen from another host: sourced by t_kcache
# (a host alone, then another host mounts) and t_cluster_locks (locks kept
# as a cache over the fast path).  Each change fails the test if the
# first host's kernel still answers from what it kept (its timeouts are
# 30 s).

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

# kc_changes LABEL A B: B (the same directory on another host) changes
# each name kc_prepare made in A; A must see each change at once.
kc_changes() {
	local l=$1 a=$2 b=$3
	rm "$b/gone"
	[[ -e $a/gone ]] && fail "$l: a file removed on the other host is still there"
	rm "$b/dir"
	mkdir "$b/dir"
	[[ -d $a/dir ]] || fail "$l: a file the other host replaced by a directory is not one"
	chmod 0600 "$b/chm"
	expect_eq "$l: mode of a file the other host changed" "$(stat -c %a "$a/chm")" 600
	echo moved >"$b/src.new"
	mv "$b/src.new" "$b/dst"
	expect_eq "$l: a name the other host renamed over" "$(cat "$a/dst")" moved
	mv "$b/src" "$b/src.away"
	[[ -e $a/src ]] && fail "$l: a name the other host renamed away is still there"
	dd if=/dev/zero of="$b/grow" bs=4096 count=3 conv=notrunc status=none
	expect_eq "$l: size of a file the other host grew" "$(stat -c %s "$a/grow")" 12288
	ln "$b/lnk" "$b/lnk2"
	expect_eq "$l: links of a file the other host linked again" "$(stat -c %h "$a/lnk")" 2
}
