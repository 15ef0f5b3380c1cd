/*
 * The iSCSI backend's private parts, shared by lun/iscsi.c (sessions,
 * the data path, probes, open and close) and lun/iscsi_pr.c (persistent
 * reservations: storage fencing and the lock-LU mutex).  Nothing outside
 * these two files includes it.
 */
#ifndef VMFS_LUN_ISCSI_INT_H
#define VMFS_LUN_ISCSI_INT_H

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include "lun_int.h"

/* Largest transfer of one command; bigger I/Os are split. */
#define ISC_MAX_XFER LUN_ZERO_CHUNK
/* How long login may take when the I/O timeout is shorter. */
#define ISC_LOGIN_MIN_MS 5000u
/* A lost session: a login try at most this often (the data path). */
#define ISC_RELOGIN_PAUSE_MS 50
/* RESERVE(6) retry interval while another initiator holds it. */
#define ISC_RES_POLL_MS 5
/* A wait for the lock-LU mutex at least this long that ends without it
 * is logged with what stood in the way (lun/iscsi_pr.c). */
#define ISC_WAIT_REPORT_MS 500
/* Looks at the fencing reservation before a host's registration gives up
 * making it (the pause after each conflict doubles from ISC_RES_POLL_MS). */
#define ISC_PR_RESERVE_TRIES 8
/* At most this many UNIT ATTENTION answers re-issue one command
 * (lun_isc_run_raw), each moving its deadline on; a log line every
 * ISC_UA_LOG_EVERY of them. */
#define ISC_UA_MAX 200000u
#define ISC_UA_LOG_EVERY 10000u
/* A command answered BUSY is re-issued after this pause, doubled each
 * time up to the maximum, until its deadline. */
#define ISC_BUSY_PAUSE_MS 20u
#define ISC_BUSY_PAUSE_MAX_MS 500u
/* Data sessions besides the control session (lun/iscsi.c "Threading"). */
#define ISC_EXTRA_SESS 3

/* Portals to one LUN (the URL's list form: lun/iscsi.c "Paths"). */
#define ISC_MAX_PATHS 4
/* How long a path that failed is left alone before the first (the
 * preferred) is tried again. */
#define ISC_FAILBACK_MS 3000u
/* A login try on the preferred path when failing back waits this long. */
#define ISC_FAILBACK_LOGIN_MS 500u

/* A data session: more I/O in flight than one session's mutex allows. */
struct isc_sess {
	pthread_mutex_t mu;		/* guards ctx, broken and path */
	struct iscsi_context *ctx;
	bool broken;
	unsigned path;			/* the portal it is logged in on */
};

struct isc_lun {
	struct lun lun;
	pthread_mutex_t mu;		/* guards ctx and every field below */
	struct iscsi_context *ctx;	/* the control session, also data */
	struct isc_sess extra[ISC_EXTRA_SESS];	/* data sessions */
	unsigned nextra;
	_Atomic unsigned next_sess;
	char user[256], secret[256];	/* CHAP, for the data sessions */
	int lun_nr;
	uint32_t block;
	char *target;
	char *portals[ISC_MAX_PATHS];
	unsigned npaths;
	_Atomic unsigned path;		/* where sessions log in now */
	_Atomic int64_t failback_ms;	/* when to try portals[0] again */
	_Atomic int64_t path_failed_ms[ISC_MAX_PATHS];	/* last failure */
	_Atomic unsigned path_failovers;
	uint32_t isid_rnd;		/* the handle's ISIDs: this + index */
	bool broken;			/* the session was lost */
	unsigned ctl_path;		/* the control session's portal */
	uint64_t ctl_nexus;		/* + 1 at each new control session */
	struct lun_probe probe;		/* what the target was found to have */
	_Atomic uint64_t pr_key;	/* our fencing registration, 0: none */
	/* The lock-LU mutex (isc_lock_*), when the URL names a lock LU. */
	int lock_lun;			/* -1: none */
	uint64_t lock_base;		/* random bits of a hold's key */
	uint32_t lock_seq;
	uint64_t lock_key;		/* our current key there, 0: none */
	uint64_t lock_nexus;		/* the ctl_nexus it was registered on */
	bool lock_held;
	/* While a hold is ours: when its RESERVE was sent plus the hold
	 * limit, after which the holding thread's writes are refused; 0
	 * otherwise.  Read without il->mu (the write path may hold the
	 * control session).  Other threads' writes are not the hold's. */
	_Atomic int64_t lock_writes_until_ms;
	_Atomic pid_t lock_tid;
	_Atomic int64_t lock_late_logged_ms;	/* lun_isc_lock_check's log */
	uint64_t seen_key;		/* another holder's key, and since when */
	int64_t seen_since_ms;
	char reserve_how[64];
};

struct isc_cmd {
	struct scsi_task *task;
	bool done;
	int status;			/* SCSI_STATUS_* */
	struct scsi_iovec iov;
};

/* Build one command (returns its task, NULL on failure) for lun_isc_run. */
typedef struct scsi_task *(*isc_issue_fn)(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c);

static inline struct isc_lun *lun_isc_of(struct lun *lun)
{
	return lun_container_of(lun, struct isc_lun, lun);
}

/* iscsi.c: running commands. */
void lun_isc_cmd_cb(struct iscsi_context *ctx, int status,
		    void *command_data, void *private_data);
void lun_isc_cmds_free(struct isc_cmd *c, unsigned n);
int lun_isc_run_raw(struct isc_lun *il, struct iscsi_context *ctx,
		    bool *broken, int path, isc_issue_fn issue, void *arg,
		    struct isc_cmd *out, int64_t deadline_ms);
/* A session: its context, its broken flag, its portal, its index. */
struct isc_sess_ref {
	pthread_mutex_t *mu;
	struct iscsi_context **ctx;
	bool *broken;
	unsigned *path;
	unsigned idx;			/* 0: the control session */
};
struct isc_sess_ref lun_isc_sess_ref(struct isc_lun *il, unsigned idx);
int lun_isc_run_on(struct isc_lun *il, const struct isc_sess_ref *s,
		   isc_issue_fn issue, void *arg, struct isc_cmd *out,
		   int64_t deadline_ms);
int lun_isc_session_restore(struct isc_lun *il, const struct isc_sess_ref *s,
			    int64_t deadline_ms);
int lun_isc_run_locked(struct isc_lun *il, isc_issue_fn issue, void *arg,
		       struct isc_cmd *out, int64_t deadline_ms);
int lun_isc_run(struct isc_lun *il, isc_issue_fn issue, void *arg,
		int64_t deadline_ms);
int64_t lun_isc_deadline(struct isc_lun *il);
struct scsi_task *lun_isc_issue_release6(struct isc_lun *il,
		struct iscsi_context *ctx, void *arg, struct isc_cmd *c);

/* iscsi_pr.c: persistent reservations. */
int lun_isc_probe_pr(struct isc_lun *il);
int lun_isc_pr_open(struct isc_lun *il);
int lun_isc_pr_register(struct lun *lun, uint64_t key);
int lun_isc_pr_preempt(struct lun *lun, uint64_t victim);
bool lun_isc_pr_lost(struct lun *lun);
int lun_isc_rearm(struct isc_lun *il, struct iscsi_context *ctx, bool *broken,
		  int path, int64_t deadline_ms);
void lun_isc_pr_close(struct isc_lun *il);
int lun_isc_lock_probe(struct isc_lun *il);
int lun_isc_lock_reserve(struct isc_lun *il, unsigned wait_ms);
uint32_t lun_isc_lock_key_bits(struct isc_lun *il);
int lun_isc_lock_release(struct isc_lun *il);
int lun_isc_lock_check(struct isc_lun *il);
/* How long a waiter may take to see a stale hold and break it. */
unsigned lun_isc_lock_break_ms(struct isc_lun *il);
int64_t lun_isc_io_deadline(struct isc_lun *il);

#endif /* VMFS_LUN_ISCSI_INT_H */
