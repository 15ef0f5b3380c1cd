#!/usr/bin/env bash
#
# t_vm_chaos: the short form of tests/cluster/vm_chaos.sh (make
# clustertest runs 100 rounds): a few rounds of migrations, host kills,
# SIGSTOPs past the lease and link cuts chosen at random on three
# corosync hosts running two HA VMs, with the LUN-level checker of the
# guests' counters (never two writers, never back) and every VM running
# again within the bound after each round.
ROUNDS=${CHAOS_ROUNDS:-4} exec "$(dirname "$0")/../cluster/vm_chaos.sh"
