/*
 * docs/protocol.pml: a Promela model of vmfs's multi-host lock protocol,
 * checked by spin (`make model`; docs/protocol-model.md says what it
 * covers, what it leaves out and how to read spin's output).
 *
 * The model is the protocol of docs/PROTOCOL.md (§1 heartbeats, §2 the
 * volume lock, §3 operations while shared, §5 recovery, §7 fencing) and
 * docs/SPEC.md §5 (lock records), §6 (heartbeat) and §7 (journals), with
 * two hosts by default (three with -DNHOSTS=3), one volume lock and one
 * object:
 *
 *   Renewer(h)  the heartbeat thread of host h (lockmgr/heartbeat.c,
 *               renew_thread): compare-and-write of its slot, counter+1;
 *               a miscompare means someone declared it dead: fence.
 *   Host(h)     everything else host h does (the engine through
 *               lockmgr/lock.c and journal/): go alone (volume lock
 *               EXCLUSIVE, then no other slot seen) or share (volume lock
 *               left FREE), take the object's lock EXCLUSIVE around a
 *               change when shared, change the object
 *               through its journal (commit, write home, move the tail),
 *               checkpoint before every release, watch the other hosts'
 *               slots (lockmgr/hbwatch.c), and recover a dead host: take
 *               its slot REPLAYING, replay its journal, free the slot;
 *               break the locks of hosts whose slot is FREE (gone).
 *   Clock       the only notion of time: each tick shortens every
 *               host's time left before its gate closes and lengthens
 *               the time each observer has seen each counter stand still.
 *               No bound on the number of ticks; no host reads another
 *               host's clock, as the C code compares only readings of its
 *               own CLOCK_MONOTONIC.
 *
 * A host may stop between any two steps for as long as it likes (spin
 * explores every interleaving, and the clock runs on meanwhile): that is
 * a slow host, a host frozen by SIGSTOP that wakes after its lease (a
 * zombie), and a crashed host (one that never runs again), all at once.
 * Its two processes stop independently, which is more than a real
 * SIGSTOP does.
 *
 * Properties, each an assert below:
 *   1. Mutual exclusion (MUTEX): never two hosts that both believe
 *      they may write the object, or one holding the volume lock
 *      EXCLUSIVE and another holding it at all, while both can write
 *      (not fenced, write gate open).
 *   2. No write after a break (assert(!taken[me]) at every write that
 *      lands): once a survivor took a host's slot for replay (the step
 *      that precedes replaying its journal and breaking its locks), no
 *      write of that host lands, be it to the object, its journal or a
 *      lock record.
 *   3. Replay never overwrites a newer block (assert at every write of
 *      the object's home block): its version on disk never goes back.
 *
 * Build-time switches:
 *   RESERVE      every compare-and-write (lock records and slots) goes
 *                through SCSI-2 reserve; read; compare; write; release
 *                (SPEC §5.2) instead of one atomic ATS step.
 *   NHOSTS       2 (default) or 3 (a survivor that dies while replaying
 *                is taken over by the third host; too big to finish in
 *                make check's time, see docs/protocol-model.md).
 *   BUG_*        seeded bugs that `make model` expects spin to catch;
 *                each is described where it changes the model.
 */

#ifndef NHOSTS
#define NHOSTS 2
#endif

/*
 * Time, in ticks of the Clock process.  lockmgr/timeouts.c, default
 * 10 s lease: renew every 2 s, fence after 6 s without a renewal, dead
 * after 12 s unchanged.  Only the order matters to safety: a host's write
 * gate must close (FENCE ticks after its last renewal landed) no later
 * than any observer may call it dead (DEAD ticks after the observer first
 * saw its last counter, which is after that renewal landed).  The C code
 * keeps a margin between the two for I/O in flight; here the gate check
 * and the write are one step, so FENCE = DEAD checks the protocol with no
 * margin at all, and the smallest such values keep the state space small.
 *
 * Time is kept only as durations that the clock advances and that stop
 * counting once they reach their limit (how long ago a host's gate was
 * opened, how long an observer has seen a counter stand still), never as
 * a date: the model has no bound on time, and no host ever reads another
 * host's clock.
 */
#ifdef BUG_FENCE_LATE
/* Seeded bug: the gate closes after observers may declare the host dead. */
#define FENCE 3
#else
#define FENCE 2
#endif
#define DEAD 2

/* Changes of the object each host makes (each one a journal transaction);
 * hosts from MODS_FROM on make none (the three-host run: the third host
 * only watches, recovers and takes replays over). */
#ifndef MODS
#define MODS 1
#endif
#ifndef MODS_FROM
#define MODS_FROM NHOSTS
#endif

#define NONE 255

/* enum vmfs_hb_state (SPEC §6.3) */
#define HB_FREE 0
#define HB_ACTIVE 1
#define HB_REPLAYING 2

/* enum vmfs_lock_mode (SPEC §5); READONLY and MULTIWRITER are not
 * modelled (sharing hosts leave the volume lock FREE, PROTOCOL.md §2). */
#define LK_FREE 0
#define LK_EXCL 1

/* Where a host stands with the volume (docs/PROTOCOL.md §2). */
#define M_WAIT 0        /* mounted, not working yet: waits for the lock */
#define M_TRYING 1      /* took the volume lock EXCLUSIVE, slots not read */
#define M_ALONE 2       /* holds it EXCLUSIVE and saw no other slot */
#define M_SHARED 3      /* shares the volume: per-object locks */

/* The two lock records: the heartbeat-region header's (the volume lock)
 * and the object's (an inode's, say). */
#define VOL 0
#define OBJ 1

/* ---- the shared LUN ---------------------------------------------------- */

/*
 * Heartbeat slots (struct vmfs_hb_slot).  Slot h is host h's: each host
 * mounts once (hb_join claims the slot), so hs_hb_gen is left out;
 * hs_host_uuid is swho: the host itself while ACTIVE, the survivor
 * replaying it while REPLAYING (REPLAYING(survivor)), NONE
 * when FREE.  The counter hs_counter is kept as what each observer can
 * tell of it: fresh[o * NHOSTS + h] is set by every renewal of h and
 * cleared when o looks (o saw it move), so "unchanged since o looked" is
 * !fresh, with no counter to bound.
 */
byte sstate[NHOSTS];
byte swho[NHOSTS];
bit fresh[NHOSTS * NHOSTS];

/* Lock records (struct vmfs_lock): mode, lk_hdr.bh_gen, and the holders
 * as a bit mask (the owner of EXCLUSIVE). */
byte lmode[2];
byte lgen[2];
byte lhold[2];

/* The SCSI-2 reservation of the whole LUN: NONE or the host holding it. */
byte reserved = NONE;

/*
 * The object's home block and each host's journal.  A version is a ghost
 * number: every change of the object makes a new, higher one.  jnl[h] is
 * the version of the object that h's journal holds committed but whose
 * tail has not moved past it (0: nothing to replay); replay writes it
 * home (SPEC §7 "Replay").
 */
byte disk;
byte jnl[NHOSTS];
byte latest;            /* ghost: highest version made so far */

/* ---- each host's own memory, and ghosts for the properties -------------- */

/* Ticks left before host h's write gate closes ("now < last successful
 * renewal + fence_ms"): FENCE when a renewal lands, counted down by the
 * clock. */
byte gate_left[NHOSTS];
bit fenced[NHOSTS];     /* it fenced itself: no I/O ever again */
byte hmode[NHOSTS];     /* M_*: what it believes of the volume lock */
bit bobj[NHOSTS];       /* it believes it holds the object's lock */
bit taken[NHOSTS];      /* ghost: a survivor took its slot for replay */

/* How long host o has seen host t's counter stand still (o's clock,
 * hbwatch.c struct hbw_seen), counted by the clock up to DEAD. */
byte age[NHOSTS * NHOSTS];

/*
 * The write gate: every write a host makes checks it in the same atomic step
 * in which the write lands.  The real code checks it right before each
 * write syscall; a process frozen between that check and the syscall,
 * whose write then lands late, is not modelled: only storage fencing
 * (PREEMPT of the host's reservation key, a later issue) closes that
 * window.
 */
#ifdef BUG_NO_GATE
/* Seeded bug: writes check only the fenced flag, not the time. */
#define GATE(h) (!fenced[h])
#else
#define GATE(h) (!fenced[h] && gate_left[h] > 0)
#endif

/*
 * Property 1 (mutual exclusion).  It can only become false when a host
 * starts to believe it holds a lock (apply() below) or when a renewal
 * reopens a gate (Renewer); time passing only closes gates.  So it is
 * asserted in exactly those steps, which checks it in every reachable
 * state without a monitor process doubling the state space.
 */
#define MAYW(h) (GATE(h) && (hmode[h] == M_ALONE || (hmode[h] == M_SHARED && bobj[h])))
#define EXCL_PAIR(a, b) \
	(!(MAYW(a) && MAYW(b)) && \
	 !(GATE(a) && GATE(b) && hmode[a] == M_ALONE && hmode[b] >= M_TRYING) && \
	 !(GATE(a) && GATE(b) && hmode[b] == M_ALONE && hmode[a] >= M_TRYING))
#if NHOSTS == 2
#define MUTEX EXCL_PAIR(0, 1)
#else
#define MUTEX (EXCL_PAIR(0, 1) && EXCL_PAIR(0, 2) && EXCL_PAIR(1, 2))
#endif

/* ---- the primitives (SPEC §5.2) ---------------------------------------- */

/*
 * ATS: a host reads the record and decides in one step, and its COMPARE
 * AND WRITE against what it read is another.
 *
 * RESERVE: reserve, read and decide are one step (RSV in the guard of the
 * deciding step, GOT_RSV in its body: lockmgr/lockprim.c reads and decides
 * under the reservation), write and release another; the compare is made
 * in memory against the bytes read under the reservation, so the write
 * does not look at the disk again.  A host that does not hold the
 * reservation while another does gets RESERVATION CONFLICT.  A survivor
 * that judged a host dead may clear that host's reservation (a LUN reset,
 * or the end of its iSCSI session: a dead host's reservation is
 * dropped): the holder may be a zombie that wakes up and writes what
 * it decided from its old read, so the write checks "nobody else holds
 * it", not "I hold it", and only the gate stops it.
 */
#ifdef RESERVE
#define RSV reserved == NONE &&
#define RSV_OR(t) (reserved == NONE || reserved == (t)) &&
#define GOT_RSV reserved = me;
#define PRIM_CAN_WRITE (reserved == me || reserved == NONE)
#define PRIM_RESERVE reserved == NONE -> reserved = me
#define PRIM_RELEASE if :: reserved == me -> reserved = NONE :: else -> skip fi
#else
#define RSV
#define RSV_OR(t)
#define GOT_RSV
#endif

/* Forget the scratch variables of one operation (fewer distinct states). */
inline scratch_clear()
{
	em = 0; eg = 0; eh = 0; nm = 0; nh = 0;
	es = 0; ew = 0; ec = 0; ns = 0; nw = 0;
	op = 0; o = 0; nx = 0
}

/* What a successful compare-and-write means to the host that made it. */
#define OP_VOL 1        /* volume lock taken or released: mode nx */
#define OP_OBJ 2        /* object lock: held iff nm is EXCLUSIVE */
#define OP_TAKE 3       /* slot o taken for replay: we replay it */
#define OP_FREED 4      /* slot rep freed: replay done */
#define OP_NONE 5
inline apply()
{
	if
	:: op == OP_VOL -> hmode[me] = nx
	:: op == OP_OBJ -> bobj[me] = (nm == LK_EXCL)
	:: op == OP_TAKE -> taken[o] = 1; rep = o
	:: op == OP_FREED -> rep = NONE
	:: else -> skip
	fi;
	assert(MUTEX)
}

/*
 * Compare-and-write of lock record l (lockmgr/lockprim.c lock_prim_caw,
 * called by lock_change): expected (em, eg, eh), new (nm, nh) with the
 * generation eg + 1.  The write passes the gate; if it lands, apply()
 * records what it means in the same step.
 */
inline lock_caw(l)
{
	d_step {
		if
#ifdef RESERVE
		:: PRIM_CAN_WRITE && GATE(me) ->
#elif defined(BUG_NO_COMPARE)
		/* Seeded bug: a write that does not compare (a plain write
		 * of the record decided from a stale read). */
		:: GATE(me) ->
#else
		:: GATE(me) && lmode[l] == em && lgen[l] == eg && lhold[l] == eh ->
#endif
			assert(!taken[me]);
			lmode[l] = nm; lgen[l] = eg + 1; lhold[l] = nh;
			apply()
		:: else -> skip
		fi;
#ifdef RESERVE
		PRIM_RELEASE;
#endif
		scratch_clear()
	}
}

/* Compare-and-write of slot s: expected state es and host ew, and with
 * ec its counter unchanged since we looked; new (ns, nw). */
inline slot_caw(s)
{
	d_step {
		if
#ifdef RESERVE
		:: PRIM_CAN_WRITE && GATE(me) ->
#else
		:: GATE(me) && sstate[s] == es && swho[s] == ew &&
		   (ec == 0 || !fresh[me * NHOSTS + (s)]) ->
#endif
			assert(!taken[me]);
			sstate[s] = ns; swho[s] = nw;
			apply()
		:: else -> skip
		fi;
#ifdef RESERVE
		PRIM_RELEASE;
#endif
		scratch_clear()
	}
}

/* ---- the heartbeat thread ------------------------------------------------ */

/*
 * lockmgr/heartbeat.c renew(): counter + 1 by compare-and-write against
 * the image it wrote last; success reopens the gate for FENCE ticks.  The
 * C code measures the gate from the renewal's START: the write may land
 * any time later (a slow I/O, a wait for the reservation), and observers
 * start their clocks no earlier than the landing, so a gate measured from
 * the start closes first.  The model reopens the gate at the landing
 * instead, which is later and so lets a host write for longer: what holds
 * here holds for the C code's earlier gate too.  (BUG_LAST_OK_AT_END
 * measures from the return, which may come long after the landing: that
 * is not safe.)
 *
 * The renewal is I/O like any other: it never starts once the gate has
 * closed (lockmgr/heartbeat.c renew_thread), and its write passes the
 * gate too; a host that has not renewed within FENCE has fenced itself
 * (self-fencing).  A miscompare means the slot is REPLAYING or FREE (a
 * survivor declared us dead): fence as well.  Under RESERVE the renewal
 * takes no reservation (docs/PROTOCOL.md "Renewals take no
 * reservation"): it reads the slot, checks in memory that it is still
 * ours, and writes; a survivor that takes the slot in between is caught
 * only by the gate at the write (the survivor took it after the gate had
 * closed), which lockmgr/heartbeat.c renew() checks just before it
 * issues the write.  BUG_RENEW_UNGATED checks the gate only when the
 * renewal starts: spin finds the zombie that then writes its renewal
 * over REPLAYING.
 */
#ifdef BUG_RENEW_UNGATED
/* Seeded bug: the renewal's write ignores the fence time. */
#define RENEW_GATE(h) (!fenced[h])
#else
#define RENEW_GATE(h) GATE(h)
#endif
/* A renewal landed: every observer will see the counter moved. */
inline renewed()
{
	for (i : 0 .. NHOSTS - 1) {
		fresh[i * NHOSTS + me] = 1
	}
	i = 0
}

proctype Renewer(byte me)
{
	byte i;
#ifdef RESERVE
	bit mine;               /* the slot as read */

	/* No reservation: a read of the slot, then a write issued only
	 * inside the gate, in two steps, so that a survivor may take the
	 * slot over in between (the owner alone writes its slot, and a
	 * survivor takes it only once the owner's gate has closed). */
	do
	:: d_step {
		GATE(me);
		mine = (sstate[me] == HB_ACTIVE && swho[me] == me)
	   };
		d_step {
			if
			:: RENEW_GATE(me) && mine ->
				assert(!taken[me]);
				renewed();
				gate_left[me] = FENCE;
				assert(MUTEX)
			:: else -> fenced[me] = 1
			fi;
			mine = 0
		}
	od
#else
#ifdef BUG_LAST_OK_AT_END
	bit ret;
#endif

	do
	:: d_step {
		GATE(me) ->
		if
		:: sstate[me] == HB_ACTIVE && swho[me] == me ->
			assert(!taken[me]);
			renewed();
#ifdef BUG_LAST_OK_AT_END
			ret = 1
#else
			gate_left[me] = FENCE;
			assert(MUTEX)
#endif
		:: else -> fenced[me] = 1
		fi
	   }
#ifdef BUG_LAST_OK_AT_END
	/* Seeded bug: the gate is measured from when the renewal returned,
	 * which may be long after it landed. */
	:: d_step { ret -> gate_left[me] = FENCE; ret = 0; assert(MUTEX) }
#endif
	od
#endif
}

/* ---- a host -------------------------------------------------------------- */

/*
 * Look at slot t (one sector read, lockmgr/hbwatch.c hbw_judge_slot).
 * gone = it does not name its host ACTIVE (FREE, or REPLAYING); what we
 * saw of it is forgotten (in the C code the pair includes hs_hb_gen,
 * which a new claim changes).  Its counter moved since we last looked:
 * start counting again.  dead = it has stood still for DEAD ticks of our
 * clock since we first saw it.
 */
inline look(t, dead, gone)
{
	gone = (sstate[t] != HB_ACTIVE || swho[t] != t);
	if
	:: gone || fresh[me * NHOSTS + t] ->
		fresh[me * NHOSTS + t] = gone; age[me * NHOSTS + t] = 0
	:: else -> skip
	fi;
	dead = (!gone && age[me * NHOSTS + t] >= DEAD)
}

/* A holder h of lock l that may be broken: its slot is FREE, which it
 * becomes only after its journal was replayed (lock_break with
 * lock_hbwatch_holds: only GONE holders). */
#ifdef BUG_BREAK_BEFORE_REPLAY
/* Seeded bug: a holder whose slot is REPLAYING is broken at once, without
 * waiting for the replay to finish. */
#define BREAKABLE(l, h) ((h) != me && (lhold[l] & (1 << (h))) && \
			 sstate[h] != HB_ACTIVE)
#else
#define BREAKABLE(l, h) ((h) != me && (lhold[l] & (1 << (h))) && \
			 sstate[h] == HB_FREE)
#endif
#if NHOSTS == 2
#define ANY_BREAKABLE(l) (BREAKABLE(l, 0) || BREAKABLE(l, 1))
#else
#define ANY_BREAKABLE(l) (BREAKABLE(l, 0) || BREAKABLE(l, 1) || BREAKABLE(l, 2))
#endif

/* Is another slot ACTIVE or being replayed (PROTOCOL.md §2)? */
#if NHOSTS == 2
#define OTHER_SLOT (sstate[1 - me] != HB_FREE)
#else
#define OTHER_SLOT (sstate[(me + 1) % 3] != HB_FREE || \
		    sstate[(me + 2) % 3] != HB_FREE)
#endif

/*
 * Watch host t.  Dead: take its slot for replay, ACTIVE -> REPLAYING(me),
 * against the very image judged (exactly one survivor wins, and a renewal
 * that lands first makes it miscompare).  Its slot REPLAYING by a
 * survivor that is itself dead or gone: take the replay over,
 * REPLAYING(it) -> REPLAYING(me).  (Reading both slots in one step is an
 * abstraction; the compare-and-write is what decides.)  Under RESERVE a
 * dead host's reservation is cleared.  One replay at a time.
 */
inline watch(t)
{
	d_step {
		RSV_OR(t) rep == NONE && t != me ->
		o = t;
		es = sstate[o]; ew = swho[o]; ec = 1;
		look(o, dead, gone);
		if
		:: dead ->
			/* RESERVE: o's reservation, if it holds it, is
			 * cleared, and we take it. */
			GOT_RSV
			ns = HB_REPLAYING; nw = me; op = OP_TAKE
		:: RSV !dead && es == HB_REPLAYING && ew != me && ew != NONE ->
			l = ew;
			look(l, dead, gone);
			l = 0;
			if
			:: dead || gone ->
				GOT_RSV
				ec = 0; ns = HB_REPLAYING; nw = me; op = OP_TAKE
			:: else -> scratch_clear()
			fi
		:: else -> scratch_clear()
		fi;
		dead = 0; gone = 0
	};
	if
	:: op == OP_TAKE -> slot_caw(o)
	:: else -> skip
	fi
}

/* Break the holders of lock L whose slot is gone (lock_break). */
inline break_gone(L)
{
	d_step {
		RSV ANY_BREAKABLE(L) ->
		GOT_RSV
		em = lmode[L]; eg = lgen[L]; eh = lhold[L];
		nh = eh;
		for (o : 0 .. NHOSTS - 1) {
			if
			:: BREAKABLE(L, o) -> nh = nh & ~(1 << o)
			:: else -> skip
			fi
		}
		o = 0;
		nm = (nh == 0 -> LK_FREE : em);
		op = OP_NONE
	};
	lock_caw(L)
}

proctype Host(byte me)
{
	byte mods = (me < MODS_FROM -> MODS : 0);
	bit homed;              /* jnl[me] written home, tail not moved yet */
	byte rep = NONE;        /* the slot whose journal we replay */
	bit replayed;           /* ... and its blocks are home */
	byte op, o, l, nx;
	bit dead, gone;
	byte es, ew, ec, ns, nw;        /* slot compare-and-write */
	byte em, eg, eh, nm, nh;        /* lock compare-and-write */

	/*
	 * Mount (hb_join): host 0 has its slot when the model starts (init);
	 * the others claim theirs (FREE -> ACTIVE) whenever they like, so
	 * host 0 may first run alone and then see a newcomer.  The claim
	 * counts as a renewal; then the heartbeat thread starts.
	 */
	if
	:: me > 0 ->
		atomic {
			sstate[me] == HB_FREE ->
			sstate[me] = HB_ACTIVE; swho[me] = me;
			gate_left[me] = FENCE;
			run Renewer(me)
		}
	:: else -> skip
	fi;

	do
	/*
	 * Going alone, first step (vol/ the watcher, PROTOCOL.md §2): take
	 * the volume lock (the heartbeat-region header's record) EXCLUSIVE.
	 * A host that has just mounted always tries (and waits while a live
	 * host holds it); a sharing host tries when it finds no other slot.
	 * Holders that are gone are broken first (break_gone(VOL) below).
	 */
	:: d_step {
		RSV lmode[VOL] == LK_FREE && !bobj[me] &&
		(hmode[me] == M_WAIT || (hmode[me] == M_SHARED && !OTHER_SLOT)) ->
		GOT_RSV
		em = lmode[VOL]; eg = lgen[VOL]; eh = lhold[VOL];
		nm = LK_EXCL; nh = 1 << me; nx = M_TRYING; op = OP_VOL
	   };
		lock_caw(VOL)

	/*
	 * Going alone, second step: read the slots again.  None but ours:
	 * alone, changes metadata without per-object locks.  Another one
	 * ACTIVE or REPLAYING: give the lock back and share.
	 */
	:: d_step {
		RSV hmode[me] == M_TRYING ->
		if
		:: !OTHER_SLOT -> hmode[me] = M_ALONE; assert(MUTEX)
		:: else ->
			GOT_RSV
			em = lmode[VOL]; eg = lgen[VOL]; eh = lhold[VOL];
			nm = LK_FREE; nh = 0; nx = M_SHARED; op = OP_VOL
		fi
	   };
		if
		:: op == OP_VOL -> lock_caw(VOL)
		:: else -> skip
		fi

	/*
	 * The lone host sees another slot: its journal is written home and
	 * its tail moved (the guard jnl[me] == 0), then it releases the
	 * volume lock and shares.
	 */
	:: d_step {
		RSV hmode[me] == M_ALONE && jnl[me] == 0 && OTHER_SLOT ->
		GOT_RSV
		em = lmode[VOL]; eg = lgen[VOL]; eh = lhold[VOL];
		nm = LK_FREE; nh = 0; nx = M_SHARED; op = OP_VOL
	   };
		lock_caw(VOL)

	/* Shared volume: the object's lock EXCLUSIVE before changing it. */
	:: d_step {
		RSV hmode[me] == M_SHARED && !bobj[me] && mods > 0 &&
		lmode[OBJ] == LK_FREE ->
		GOT_RSV
		em = lmode[OBJ]; eg = lgen[OBJ]; eh = lhold[OBJ];
		nm = LK_EXCL; nh = 1 << me; op = OP_OBJ
	   };
		lock_caw(OBJ)

	/* Change the object: a transaction committed to our journal. */
	:: d_step {
		mods > 0 && jnl[me] == 0 && (hmode[me] == M_ALONE || bobj[me]) &&
		GATE(me) ->
		assert(!taken[me]);
		latest++; jnl[me] = latest; mods--
	   }

	/* Checkpoint, first half: the committed block written home. */
	:: d_step {
		jnl[me] != 0 && !homed && GATE(me) ->
		assert(!taken[me]);
		assert(jnl[me] >= disk);
		disk = jnl[me]; homed = 1
	   }

	/* Checkpoint, second half: the journal tail moved past it. */
	:: d_step {
		homed && GATE(me) ->
		assert(!taken[me]);
		jnl[me] = 0; homed = 0
	   }

	/*
	 * Release the object's lock once done with it (mods == 0, which
	 * also keeps the lock generation bounded), checkpoint first: nothing
	 * of our journal may be left to land on the object later.
	 */
	:: d_step {
		RSV bobj[me] && mods == 0 &&
#ifndef BUG_RELEASE_DIRTY
		/* (the seeded bug releases with the change only in the
		 * journal) */
		jnl[me] == 0 &&
#endif
		lmode[OBJ] == LK_EXCL && lhold[OBJ] == 1 << me ->
		GOT_RSV
		em = lmode[OBJ]; eg = lgen[OBJ]; eh = lhold[OBJ];
		nm = LK_FREE; nh = 0; op = OP_OBJ
	   };
		lock_caw(OBJ)

	/* Watch another host; take its slot for replay if it is dead. */
	:: watch(0)
	:: watch(1)
#if NHOSTS == 3
	:: watch(2)
#endif

	/* Replay the dead host's journal: every committed block home
	 * (idempotent: a survivor taking the replay over does it again). */
	:: d_step {
		rep != NONE && !replayed && GATE(me) ->
		assert(!taken[me]);
		if
		:: jnl[rep] != 0 -> assert(jnl[rep] >= disk); disk = jnl[rep]
		:: else -> skip
		fi;
		replayed = 1
	   }

	/* ... its journal header CLEAN, then its slot FREE: from then on
	 * its locks may be broken. */
	:: d_step {
		RSV rep != NONE && replayed && GATE(me) ->
		GOT_RSV
		assert(!taken[me]);
		jnl[rep] = 0; replayed = 0;
		es = HB_REPLAYING; ew = me; ec = 0;
		ns = HB_FREE; nw = NONE; op = OP_FREED
	   };
		slot_caw(rep)

	/* Break the gone holders out of a lock record (lock_break). */
	:: break_gone(VOL)
	:: break_gone(OBJ)
	od
}

/* ---- time ---------------------------------------------------------------- */

active proctype Clock()
{
	byte i;

	do
	:: d_step {
		for (i : 0 .. NHOSTS - 1) {
			if
			:: gate_left[i] > 0 -> gate_left[i]--
			:: else -> skip
			fi;
		}
		for (i : 0 .. NHOSTS * NHOSTS - 1) {
			if
			:: !fresh[i] && age[i] < DEAD -> age[i]++
			:: else -> skip
			fi
		}
		i = 0
	   }
	od
}

init
{
	byte h;

	atomic {
		for (h : 0 .. NHOSTS - 1) {
			swho[h] = NONE
		}
		for (h : 0 .. NHOSTS * NHOSTS - 1) {
			fresh[h] = 1
		}
		sstate[0] = HB_ACTIVE; swho[0] = 0; gate_left[0] = FENCE;
		run Renewer(0);
		for (h : 0 .. NHOSTS - 1) {
			run Host(h)
		}
		h = 0
	}
}
