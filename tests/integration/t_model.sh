#!/usr/bin/env bash
#
# t_model: the Promela model of the multi-host lock protocol
# (docs/protocol.pml) checks with 0 errors for both lock primitives, and
# spin finds every seeded bug (docs/protocol-model.md).  The same as
# `make model`.
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v spin >/dev/null ||
	fail "spin is not installed: run 'make deps' (Debian package spin)"

step "spin: both primitives clean, every seeded bug caught"
"$T_ROOT/tests/model/run.sh" "$T_ROOT/docs/protocol.pml" "$VMFS_BUILD/model" ||
	fail "the protocol model did not check as expected (output above)"
t_log "ok"
