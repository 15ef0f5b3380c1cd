#!/usr/bin/env bash
#
# t_vm_chaos: the short form of tests/cluster/vm_chaos.sh (make
# clustertest runs 100 rounds): a few rounds of migrations, host kills,
# SIGSTOPs past the lease and link cuts chosen at random on three
# corosync hosts running two HA VMs, with the LUN-level checker of the
# guests' counters (never two writers, never back) and every VM running
# again within the bound after each round.
# A fixed seed: the same four rounds every run (a link cut of h2, h2
# killed, h1 stopped past its lease, a migration: both VMs restarted by
# HA once); CHAOS_SEED and CHAOS_ROUNDS pick others.
ROUNDS=${CHAOS_ROUNDS:-4} SEED=${CHAOS_SEED:-9} \
	exec "$(dirname "$0")/../cluster/vm_chaos.sh"
