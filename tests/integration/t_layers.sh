#!/usr/bin/env bash
#
# t_layers: the include arrows of docs/ARCHITECTURE.md hold in the tree
# (tools/check-layers.sh: no component includes another's internal header,
# or the public header of a component above it), and the check itself
# catches both kinds of violation in a small tree made for it.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

CHECK=$T_ROOT/tools/check-layers.sh

step "the tree follows the arrows"
"$CHECK" "$T_ROOT" >"$T_DIR/tree.out" 2>&1 ||
	fail "include arrows broken:
$(cat "$T_DIR/tree.out")"

step "a made-up tree with violations is refused, each one named"
fake=$T_DIR/fake
mkdir -p "$fake"/{include/vmfs,lun,vol,fsck,newdir}
for h in lun vol format; do echo "/* $h */" >"$fake/include/vmfs/$h.h"; done
echo '#include "vmfs/lun.h"' >"$fake/vol/ok.c"
echo '#include "vmfs/vol.h"' >"$fake/lun/up.c"
printf '/* x */\n#include "../vol/vol_int.h"\n' >"$fake/fsck/peek.c"
echo '#include "vmfs/nobody.h"' >"$fake/lun/stray.c"
echo 'int x;' >"$fake/newdir/a.c"
if "$CHECK" "$fake" >"$T_DIR/fake.out" 2>&1; then
	fail "check-layers passed a tree with violations"
fi
grep -q '^lun/up.c:1: lun/ may not include vmfs/vol.h' "$T_DIR/fake.out" ||
	fail "upward include not reported: $(cat "$T_DIR/fake.out")"
grep -q '^fsck/peek.c:2: includes "../vol/vol_int.h"' "$T_DIR/fake.out" ||
	fail "internal header of another folder not reported: $(cat "$T_DIR/fake.out")"
grep -q '^lun/stray.c:1: includes vmfs/nobody.h, which no component owns' "$T_DIR/fake.out" ||
	fail "unknown public header not reported: $(cat "$T_DIR/fake.out")"
grep -q '^newdir/: a folder with C code' "$T_DIR/fake.out" ||
	fail "unknown folder not reported: $(cat "$T_DIR/fake.out")"
if grep -q '^vol/ok.c' "$T_DIR/fake.out"; then
	fail "a downward include was reported: $(cat "$T_DIR/fake.out")"
fi

t_log PASS
