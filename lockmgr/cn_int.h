/*
 * Internals of the cluster fast path: the wire format (cnwire.c), shared
 * with the unit tests and the test tool that forges messages, and the
 * state the thread keeps, shared by the thread and the corosync handles
 * (clusternet.c) and the handling of what arrives (cnrecv.c).  Only
 * lockmgr/ and tests/ include this header.
 *
 * Every message is a 16-byte header and a body, all little-endian:
 *
 *   0x00 le32 magic    CN_MAGIC, "VCPG"
 *   0x04 le16 version  CN_PROTO_VERSION of the sender
 *   0x06 le16 type     CN_MSG_*
 *   0x08 le32 length   of the whole message, header included
 *   0x0c le32 crc      crc32c of the whole message with this field 0
 *
 * A receiver drops (and logs) a message that is short, lies about its
 * length, has another magic or a bad crc, a type or body it does not
 * know, or a newer version: a newer sender must speak version 1 to us
 * until every host understands more.  Nothing a message says is trusted
 * for safety (lockmgr.h, "The cluster fast path").
 */
#ifndef VMFS_CN_INT_H
#define VMFS_CN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "vmfs/lockmgr.h"

#define CN_MAGIC          0x47504356u    /* "VCPG" */
#define CN_PROTO_VERSION  1
#define CN_MSG_MAX        4096u          /* the longest: an APP */

enum cn_msg_type {
	/* Who I am: sent when I join and whenever members join, so that
	 * newcomers learn it. */
	CN_MSG_HELLO = 1,
	/* Host `target`, release the lock at addr: I want it in mode. */
	CN_MSG_ASK = 2,
	/* The lock at addr is released (broadcast: any waiter looks again). */
	CN_MSG_RELEASED = 3,
	/* Process (nodeid, pid)'s request req_id for addr is refused: files
	 * open here need the lock; stop waiting. */
	CN_MSG_BUSY = 4,
	/* For host `target` (all zero: every member): data the daemon
	 * above the fast path exchanges (a VM's migration), opaque here. */
	CN_MSG_APP = 5,
};

struct cn_wire_hdr {
/*0x00*/ le32 ch_magic;
/*0x04*/ le16 ch_version;
/*0x06*/ le16 ch_type;
/*0x08*/ le32 ch_length;
/*0x0c*/ le32 ch_crc;
};
_Static_assert(sizeof(struct cn_wire_hdr) == 16, "cn_wire_hdr");

struct cn_wire_hello {
/*0x00*/ uint8_t hw_host_uuid[VMFS_UUID_SIZE];
/*0x10*/ le32 hw_slot;
/*0x14*/ le16 hw_name_len;        /* bytes of name after the body */
/*0x16*/ le16 hw_flags;           /* 0 */
/*0x18*/ le64 hw_hb_gen;
	/* then hw_name_len bytes of host name, no NUL */
};
_Static_assert(sizeof(struct cn_wire_hello) == 32, "cn_wire_hello");

struct cn_wire_ask {
/*0x00*/ le64 aw_req_id;
/*0x08*/ le64 aw_addr;
/*0x10*/ le32 aw_mode;
/*0x14*/ le32 aw_target_slot;
/*0x18*/ le64 aw_target_hb_gen;
/*0x20*/ uint8_t aw_target_uuid[VMFS_UUID_SIZE];
};
_Static_assert(sizeof(struct cn_wire_ask) == 48, "cn_wire_ask");

struct cn_wire_released {
/*0x00*/ le64 rw_addr;
};
_Static_assert(sizeof(struct cn_wire_released) == 8, "cn_wire_released");

struct cn_wire_busy {
/*0x00*/ le32 bw_nodeid;          /* the asker */
/*0x04*/ le32 bw_pid;
/*0x08*/ le64 bw_req_id;
/*0x10*/ le64 bw_addr;
};
_Static_assert(sizeof(struct cn_wire_busy) == 24, "cn_wire_busy");

struct cn_wire_app {
/*0x00*/ le64 pw_target_hb_gen;
/*0x08*/ le32 pw_target_slot;
/*0x0c*/ le32 pw_data_len;        /* bytes of data after the body */
/*0x10*/ uint8_t pw_target_uuid[VMFS_UUID_SIZE];
	/* then pw_data_len bytes */
};
_Static_assert(sizeof(struct cn_wire_app) == 32, "cn_wire_app");
_Static_assert(CN_APP_MAX + sizeof(struct cn_wire_app) +
	       sizeof(struct cn_wire_hdr) <= CN_MSG_MAX, "CN_APP_MAX");

/* A message in host order. */
struct cn_msg {
	enum cn_msg_type type;
	union {
		struct {
			uint8_t host_uuid[VMFS_UUID_SIZE];
			uint32_t slot;
			uint64_t hb_gen;
			char name[CN_HOST_NAME_MAX + 1];
		} hello;
		struct {
			uint64_t req_id, addr;
			uint32_t mode;
			struct lock_holder target;
		} ask;
		struct {
			uint64_t addr;
		} released;
		struct {
			uint32_t nodeid, pid;
			uint64_t req_id, addr;
		} busy;
		struct {
			struct lock_holder target;   /* zero: everyone */
			uint32_t len;
			char data[CN_APP_MAX + 1];   /* NUL after len bytes */
		} app;
	} u;
};

/*
 * m into buf (len bytes); returns the message's length, or -EINVAL for a
 * type it does not know or a HELLO name that is too long or not
 * printable ASCII, -E2BIG when buf is too small.
 */
ssize_t cn_msg_encode(const struct cn_msg *m, void *buf, size_t len);
/*
 * The len bytes at buf into *m: 0, -EPROTONOSUPPORT for a newer version,
 * else -EBADMSG; *why (static text) says what was wrong, for the log.
 */
int cn_msg_decode(const void *buf, size_t len, struct cn_msg *m,
		  const char **why);
/* "hello", "ask", ... or "unknown". */
const char *cn_msg_type_name(unsigned type);
/* Seal a message whose bytes were changed (tests): length and crc. */
void cn_msg_seal(void *buf, size_t len);


/* ---- the fast path's state (clusternet.c, cnrecv.c) ---------------------- */

/* What a callback saw, handled after the dispatch returns. */
struct cn_event {
	struct cn_event *next;
	bool confchg;
	uint32_t nodeid, pid;     /* deliver: the sender */
	size_t len;               /* deliver: bytes; confchg: members */
	size_t njoined;
	uint8_t data[];           /* the message, or len cpg_addresses */
};

/* A message queued for the thread to multicast. */
struct cn_out {
	struct cn_out *next;
	size_t len;
	uint8_t buf[CN_MSG_MAX];
};

/* A cn_ask_release waiting for its answer. */
struct cn_ask {
	struct cn_ask *next;
	uint64_t req_id, addr;
	struct lock_holder target;
	bool done;
	int result;
};

struct cn {
	struct cn_self self;
	struct cn_ops ops;
	void *arg;
	struct cpg_name group;
	char group_text[64];
	pthread_t thread;
	int wake_fd;              /* eventfd: queue, stop */

	pthread_mutex_t mu;
	pthread_cond_t cond;      /* an ask answered or failed */
	bool stopping;
	struct cn_view view;
	struct cn_ask *asks;
	uint64_t next_req_id;
	struct cn_out *outq, **outq_tail;

	/* The thread's own. */
	cpg_handle_t cpg;
	quorum_handle_t quorum;
	cmap_handle_t cmap;
	bool connected, have_quorum, have_cmap, ever_up, said_absent;
	int cpg_fd, quorum_fd;
	struct cn_event *ev_head, **ev_tail;
	bool ev_lost;             /* out of memory while recording */
	int64_t reject_window_ms;
	unsigned reject_logged;
	uint64_t reject_quiet;
};

/* clusternet.c */
/* Is member m host h (uuid, slot, generation)?  Is h this host? */
bool cn_holder_is(const struct cn_member *m, const struct lock_holder *h);
bool cn_is_self(const struct cn *cn, const struct lock_holder *h);
/* Is h all zero (a message for every member)? */
bool cn_holder_is_nobody(const struct lock_holder *h);
/* Queue m for the thread to multicast (any thread). */
void cn_queue(struct cn *cn, const struct cn_msg *m);
void cn_queue_hello(struct cn *cn);
/* Under mu: end every waiting ask (target NULL) or those for target
 * with -ENOTCONN. */
void cn_fail_asks_locked(struct cn *cn, const struct cn_member *target);
/* Finalize the handles (the thread); report: tell the engine that every
 * known member is gone from our view. */
void cn_disconnect(struct cn *cn, const char *why, bool report);

/* cnrecv.c: what the callbacks recorded, handled after the dispatch. */
void cn_handle_events(struct cn *cn);

#endif
