#!/usr/bin/env bash
#
# t_crash2: crash states of a two-host workload (issue #10,
# tests/crash/README.md §5).  Hosts A and B share one volume, each with
# its own heartbeat slot, journal and per-operation locks; A's recorded
# writes are cut at prefixes, reordered within A's flush epochs and torn,
# B's writes before the crash land whole, and a restarted B recovers A
# (vol_recover_slot), works on, and the result must be fsck-clean with
# every promise of A (fsync'ed, or older than a commit interval) and of B
# (every op that ended before the crash) kept.  t_crash.sh with
# VMFS_CRASH_HOSTS=2 and 300 ops of A (about 150 of B) by default, so
# that 1,000 states take about a minute on 2 cores; the same variables
# and arguments.
#
#   t_crash2.sh [SEED]         default seed 1
#
VMFS_CRASH_OPS=${VMFS_CRASH_OPS:-300} VMFS_CRASH_HOSTS=2 exec "$(dirname "$0")/t_crash.sh" "$@"
