/*
 * Host state: who this host is and what it has mounted.
 *
 * A Tokyo Cabinet hash DB, STATE_DIR/host.tch, holds
 *   "host_uuid"          16 random bytes (an RFC 4122 version 4 UUID),
 *                        made at the first vmfsd_host_open() and kept for
 *                        good: it is the host's identity in heartbeat
 *                        slots and lock records on every volume;
 *   "host_name"          the name given with --host-name (text, no NUL),
 *                        absent until one is given;
 *   "mount:<vol uuid>"   one record per volume vmfsd serves (text, below).
 * (Older versions also kept "closed:<vol uuid>" records, how a daemon's
 * close ended, for `vmfs umount`; the control socket's reply carries that
 * now, and the lookups below skip keys that are not theirs.)
 *
 * Several processes use the DB (vmfsd, the vmfs CLI), so every call opens
 * it, does its work and closes it again; Tokyo Cabinet's file lock keeps
 * writers apart, taken without blocking and retried for a short while.
 * Within one process a mutex serialises the calls, because Tokyo Cabinet
 * refuses to open one file twice in a process.
 *
 * "Mounted by this host" is enforced by a lock, not by the DB: the
 * claimant holds flock(LOCK_EX) on STATE_DIR/vol-<uuid>.lock until
 * vmfsd_host_release() or its exit, so a crash can never leave a volume
 * claimed.  A record whose daemon is gone is stale; listing and finding
 * delete such records.  Lock files are never unlinked: removing a lock
 * file someone may be about to flock would let two claimants hold "the"
 * lock on two different inodes.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <tcutil.h>
#include <tchdb.h>

#include "vmfs/clock.h"
#include "vmfs/vmfsd.h"
#include "vmfs/vol.h"

#define HOST_DB_NAME        "host.tch"
#define HOST_KEY_UUID       "host_uuid"
#define HOST_KEY_NAME       "host_name"
#define HOST_KEY_MOUNT      "mount:"
#define HOST_REC_VERSION    1
#define HOST_REC_MAX        (16 * 1024)   /* larger values are not ours */
#define HOST_LOCK_WAIT_MS   2000          /* another process's DB call */
#define HOST_LOCK_POLL_MS   5
#define HOST_DAEMON_COMM    "vmfsd"
#define HOST_DB_BUCKETS     1021          /* a few records, not 131071 */

struct host_claim {
	struct host_claim *next;
	char vol_uuid[37];
	int fd;                   /* holds flock(LOCK_EX) on the lock file */
};

struct vmfsd_host {
	char *dir;
	char *db_path;
	uint8_t uuid[VMFS_UUID_SIZE];
	char name[VMFSD_HOST_NAME_MAX + 1];   /* "" when none is stored */
	pthread_mutex_t lock;     /* claims */
	struct host_claim *claims;
};

/* Tokyo Cabinet refuses a second open of one file in a process. */
static pthread_mutex_t host_db_mutex = PTHREAD_MUTEX_INITIALIZER;

/* ---- small helpers ----------------------------------------------------- */

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx": it becomes part of a path. */
static bool host_uuid_valid(const char *s)
{
	int i;

	if (!s)
		return false;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[36] == '\0';
}

/* mkdir -p with mode 0700 for every directory it makes. */
static int host_mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	size_t len = strlen(dir), i;

	if (len == 0 || len >= sizeof(path))
		return len ? -ENAMETOOLONG : -EINVAL;
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		if (i < len)
			path[i] = '/';
	}
	if (stat(dir, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int host_tc_errno(int ecode)
{
	switch (ecode) {
	case TCESUCCESS:
		return 0;
	case TCENOFILE:
	case TCENOREC:
		return -ENOENT;
	case TCENOPERM:
		return -EACCES;
	case TCELOCK:
		return -EAGAIN;     /* another process kept the DB too long */
	case TCEKEEP:
		return -EEXIST;
	case TCEMETA:
	case TCERHEAD:
	case TCEINVALID:
		return -EBADMSG;    /* not a Tokyo Cabinet hash DB, or damaged */
	default:
		return -EIO;
	}
}

/* ---- the DB ------------------------------------------------------------- */

/*
 * Open the DB (the caller holds host_db_mutex).  A writer creates it; a
 * reader is the fallback for callers who may read the state directory but
 * not write it.  Another process's call takes milliseconds, so a busy
 * lock is retried for HOST_LOCK_WAIT_MS.
 */
static int host_db_open(const struct vmfsd_host *h, bool write, TCHDB **out)
{
	int omode = HDBOLCKNB | (write ? HDBOWRITER | HDBOCREAT | HDBOTSYNC
				       : HDBOREADER);
	int64_t deadline = vmfs_mono_ms() + HOST_LOCK_WAIT_MS;
	struct timespec pause = { 0, HOST_LOCK_POLL_MS * 1000000L };
	TCHDB *db;
	int ecode;

	db = tchdbnew();
	if (!db)
		return -ENOMEM;
	/* Only takes effect when the DB is created. */
	tchdbtune(db, HOST_DB_BUCKETS, -1, -1, 0);
	for (;;) {
		if (tchdbopen(db, h->db_path, omode)) {
			*out = db;
			return 0;
		}
		ecode = tchdbecode(db);
		if (ecode != TCELOCK || vmfs_mono_ms() >= deadline)
			break;
		nanosleep(&pause, NULL);
	}
	tchdbdel(db);
	return host_tc_errno(ecode);
}

/* Writer if possible, else reader; *writable says which. */
static int host_db_open_any(const struct vmfsd_host *h, TCHDB **out,
			    bool *writable)
{
	int ret = host_db_open(h, true, out);

	*writable = ret == 0;
	if (ret == -EACCES || ret == -EROFS)
		ret = host_db_open(h, false, out);
	return ret;
}

static int host_db_close(TCHDB *db)
{
	int ret = 0;

	if (!tchdbclose(db))
		ret = host_tc_errno(tchdbecode(db));
	tchdbdel(db);
	return ret;
}

/* ---- mount records -------------------------------------------------------
 *
 * A record is text, one "key value" per line, so that `tchmgr get
 * host.tch mount:UUID` shows it:
 *   version 1
 *   vol_uuid <uuid>
 *   lun <spec>
 *   mountpoint <path>
 *   pid <decimal>
 *   since_ns <decimal, wall clock>
 * Values escape backslash as "\\" and newline as "\n".  Unknown keys are
 * skipped (room for additions within version 1); a missing required key,
 * an over-long value or another version makes the record unreadable.
 */

static int host_put_escaped(char *out, size_t cap, size_t *pos,
			    const char *key, const char *val)
{
	size_t n = *pos;
	int w;

	w = snprintf(out + n, cap - n, "%s ", key);
	if (w < 0 || (size_t)w >= cap - n)
		return -ENAMETOOLONG;
	n += (size_t)w;
	for (; *val; val++) {
		if (n + 3 >= cap)
			return -ENAMETOOLONG;
		if (*val == '\\' || *val == '\n') {
			out[n++] = '\\';
			out[n++] = *val == '\n' ? 'n' : '\\';
		} else {
			out[n++] = *val;
		}
	}
	out[n++] = '\n';
	out[n] = '\0';
	*pos = n;
	return 0;
}

static int host_rec_encode(const struct vmfsd_mount_rec *r, char *out,
			   size_t cap, size_t *len)
{
	char num[32];
	size_t pos = 0;
	int ret;

	snprintf(num, sizeof(num), "%d", HOST_REC_VERSION);
	ret = host_put_escaped(out, cap, &pos, "version", num);
	if (!ret)
		ret = host_put_escaped(out, cap, &pos, "vol_uuid", r->vol_uuid);
	if (!ret)
		ret = host_put_escaped(out, cap, &pos, "lun", r->lun);
	if (!ret)
		ret = host_put_escaped(out, cap, &pos, "mountpoint",
				       r->mountpoint);
	snprintf(num, sizeof(num), "%ld", (long)r->pid);
	if (!ret)
		ret = host_put_escaped(out, cap, &pos, "pid", num);
	snprintf(num, sizeof(num), "%" PRId64, r->since_ns);
	if (!ret)
		ret = host_put_escaped(out, cap, &pos, "since_ns", num);
	*len = pos;
	return ret;
}

/* Unescape src into dst (cap bytes with the NUL); false if it is too long
 * or holds a bad escape. */
static bool host_unescape(const char *src, char *dst, size_t cap)
{
	size_t n = 0;

	for (; *src; src++) {
		char c = *src;

		if (c == '\\') {
			src++;
			if (*src == 'n')
				c = '\n';
			else if (*src == '\\')
				c = '\\';
			else
				return false;
		}
		if (n + 1 >= cap)
			return false;
		dst[n++] = c;
	}
	dst[n] = '\0';
	return true;
}

static bool host_parse_i64(const char *s, int64_t min, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min)
		return false;
	*out = v;
	return true;
}

/* Parse a record; buf is NUL-terminated and is modified. */
static int host_rec_decode(char *buf, struct vmfsd_mount_rec *r)
{
	enum { F_VER = 1, F_UUID = 2, F_LUN = 4, F_MP = 8, F_PID = 16 };
	unsigned seen = 0;
	char *line, *save = NULL, *val;
	int64_t v;

	memset(r, 0, sizeof(*r));
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		val = strchr(line, ' ');
		if (!val)
			return -EBADMSG;
		*val++ = '\0';
		if (!strcmp(line, "version")) {
			if (!host_parse_i64(val, 0, &v) || v != HOST_REC_VERSION)
				return -EBADMSG;
			seen |= F_VER;
		} else if (!strcmp(line, "vol_uuid")) {
			if (!host_unescape(val, r->vol_uuid, sizeof(r->vol_uuid)) ||
			    !host_uuid_valid(r->vol_uuid))
				return -EBADMSG;
			seen |= F_UUID;
		} else if (!strcmp(line, "lun")) {
			if (!host_unescape(val, r->lun, sizeof(r->lun)))
				return -EBADMSG;
			seen |= F_LUN;
		} else if (!strcmp(line, "mountpoint")) {
			if (!host_unescape(val, r->mountpoint,
					   sizeof(r->mountpoint)))
				return -EBADMSG;
			seen |= F_MP;
		} else if (!strcmp(line, "pid")) {
			if (!host_parse_i64(val, 1, &v) || v > INT_MAX)
				return -EBADMSG;
			r->pid = (pid_t)v;
			seen |= F_PID;
		} else if (!strcmp(line, "since_ns")) {
			if (!host_parse_i64(val, INT64_MIN, &v))
				return -EBADMSG;
			r->since_ns = v;
		}
	}
	if (seen != (F_VER | F_UUID | F_LUN | F_MP | F_PID))
		return -EBADMSG;
	return 0;
}

static void host_mount_key(const char *vol_uuid, char key[64])
{
	snprintf(key, 64, "%s%s", HOST_KEY_MOUNT, vol_uuid);
}

static int host_rec_get(TCHDB *db, const char *vol_uuid,
			struct vmfsd_mount_rec *r)
{
	char key[64];
	char *val;
	int len, ret;

	host_mount_key(vol_uuid, key);
	val = tchdbget(db, key, (int)strlen(key), &len);
	if (!val)
		return host_tc_errno(tchdbecode(db));
	/* Tokyo Cabinet NUL-terminates values; an inner NUL is not ours. */
	if (len <= 0 || len > HOST_REC_MAX || strlen(val) != (size_t)len)
		ret = -EBADMSG;
	else
		ret = host_rec_decode(val, r);
	free(val);
	if (!ret && strcmp(r->vol_uuid, vol_uuid))
		ret = -EBADMSG;
	return ret;
}

static int host_rec_put(TCHDB *db, const struct vmfsd_mount_rec *r)
{
	char key[64];
	char *val;
	size_t len;
	int ret;

	val = malloc(HOST_REC_MAX);
	if (!val)
		return -ENOMEM;
	ret = host_rec_encode(r, val, HOST_REC_MAX, &len);
	if (!ret) {
		host_mount_key(r->vol_uuid, key);
		if (!tchdbput(db, key, (int)strlen(key), val, (int)len))
			ret = host_tc_errno(tchdbecode(db));
	}
	free(val);
	return ret;
}

static int host_rec_del(TCHDB *db, const char *vol_uuid)
{
	char key[64];
	int ret;

	host_mount_key(vol_uuid, key);
	if (tchdbout(db, key, (int)strlen(key)))
		return 0;
	ret = host_tc_errno(tchdbecode(db));
	return ret == -ENOENT ? 0 : ret;
}

/*
 * Is the record's daemon still running?  Its pid must exist and be a
 * vmfsd (so a recycled pid does not keep a record alive), or be this very
 * process (a program that claims a volume itself, such as a test).
 */
static bool host_rec_live(const struct vmfsd_mount_rec *r)
{
	char path[64], comm[32];
	ssize_t n;
	int fd;

	if (r->pid <= 0)
		return false;
	if (r->pid == getpid())
		return true;
	if (kill(r->pid, 0) && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)r->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;   /* no /proc: trust kill() */
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, HOST_DAEMON_COMM);
}

/* ---- public API -------------------------------------------------------- */

/* Read the host UUID, making it on first use (writer DB). */
static int host_uuid_load(TCHDB *db, bool writable, uint8_t uuid[16])
{
	void *val;
	int len;

	val = tchdbget(db, HOST_KEY_UUID, (int)strlen(HOST_KEY_UUID), &len);
	if (val) {
		int ret = len == VMFS_UUID_SIZE ? 0 : -EBADMSG;

		if (!ret)
			memcpy(uuid, val, VMFS_UUID_SIZE);
		free(val);
		return ret;
	}
	if (tchdbecode(db) != TCENOREC)
		return host_tc_errno(tchdbecode(db));
	if (!writable)
		return -ENOENT;
	if (getrandom(uuid, VMFS_UUID_SIZE, 0) != VMFS_UUID_SIZE)
		return errno ? -errno : -EIO;
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
	if (!tchdbputkeep(db, HOST_KEY_UUID, (int)strlen(HOST_KEY_UUID),
			  uuid, VMFS_UUID_SIZE))
		return host_tc_errno(tchdbecode(db));
	return 0;
}

bool vmfsd_host_name_valid(const char *name)
{
	size_t i, len = name ? strlen(name) : 0;

	if (len == 0 || len > VMFSD_HOST_NAME_MAX)
		return false;
	/* Printable and unquoted in logs, one word in `vmfs hosts` columns;
	 * no '/' so that a later `vm migrate --to NAME` can name it in paths. */
	for (i = 0; i < len; i++)
		if (!isgraph((unsigned char)name[i]) || name[i] == '/')
			return false;
	return true;
}

/* The stored name into name[VMFSD_HOST_NAME_MAX + 1]; "" when there is
 * none.  One that is not a valid name (written by hand, or by a newer
 * vmfs) is ignored rather than shown. */
static int host_name_load(TCHDB *db, char *name)
{
	char *val;
	int len;

	name[0] = '\0';
	val = tchdbget(db, HOST_KEY_NAME, (int)strlen(HOST_KEY_NAME), &len);
	if (!val)
		return tchdbecode(db) == TCENOREC ? 0 :
		       host_tc_errno(tchdbecode(db));
	if (len > 0 && len <= VMFSD_HOST_NAME_MAX &&
	    strlen(val) == (size_t)len && vmfsd_host_name_valid(val))
		memcpy(name, val, (size_t)len + 1);
	free(val);
	return 0;
}

int vmfsd_host_open(const char *state_dir, struct vmfsd_host **out)
{
	struct vmfsd_host *h;
	bool writable;
	TCHDB *db;
	int ret, cret;

	*out = NULL;
	if (!state_dir || !*state_dir)
		return -EINVAL;
	ret = host_mkdir_p(state_dir);
	if (ret)
		return ret;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->dir = strdup(state_dir);
	if (!h->dir || asprintf(&h->db_path, "%s/%s", state_dir,
				HOST_DB_NAME) < 0) {
		h->db_path = NULL;
		ret = -ENOMEM;
		goto err;
	}
	pthread_mutex_init(&h->lock, NULL);

	pthread_mutex_lock(&host_db_mutex);
	ret = host_db_open_any(h, &db, &writable);
	if (!ret) {
		ret = host_uuid_load(db, writable, h->uuid);
		if (!ret)
			ret = host_name_load(db, h->name);
		cret = host_db_close(db);
		if (!ret)
			ret = cret;
	}
	pthread_mutex_unlock(&host_db_mutex);
	if (ret) {
		pthread_mutex_destroy(&h->lock);
		goto err;
	}
	*out = h;
	return 0;
err:
	free(h->db_path);
	free(h->dir);
	free(h);
	return ret;
}

void vmfsd_host_close(struct vmfsd_host *h)
{
	if (!h)
		return;
	while (h->claims)
		vmfsd_host_release(h, h->claims->vol_uuid);
	pthread_mutex_destroy(&h->lock);
	free(h->db_path);
	free(h->dir);
	free(h);
}

void vmfsd_host_uuid(struct vmfsd_host *h, uint8_t uuid[VMFS_UUID_SIZE])
{
	memcpy(uuid, h->uuid, VMFS_UUID_SIZE);
}

const char *vmfsd_host_dir(struct vmfsd_host *h)
{
	return h->dir;
}

const char *vmfsd_host_name(struct vmfsd_host *h)
{
	return h->name;
}

int vmfsd_host_set_name(struct vmfsd_host *h, const char *name)
{
	TCHDB *db;
	int ret, cret;

	if (!vmfsd_host_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&host_db_mutex);
	ret = host_db_open(h, true, &db);
	if (!ret) {
		if (!tchdbput(db, HOST_KEY_NAME, (int)strlen(HOST_KEY_NAME),
			      name, (int)strlen(name)))
			ret = host_tc_errno(tchdbecode(db));
		cret = host_db_close(db);
		if (!ret)
			ret = cret;
	}
	if (!ret)
		snprintf(h->name, sizeof(h->name), "%s", name);
	pthread_mutex_unlock(&host_db_mutex);
	return ret;
}

/* What we can say about the holder of a claim we could not get. */
static void host_fill_existing(struct vmfsd_host *h, const char *vol_uuid,
			       struct vmfsd_mount_rec *existing)
{
	bool writable;
	TCHDB *db;
	int ret;

	pthread_mutex_lock(&host_db_mutex);
	ret = host_db_open_any(h, &db, &writable);
	if (!ret) {
		ret = host_rec_get(db, vol_uuid, existing);
		host_db_close(db);
	}
	pthread_mutex_unlock(&host_db_mutex);
	if (ret) {
		/* The holder is between its flock and its record. */
		memset(existing, 0, sizeof(*existing));
		snprintf(existing->vol_uuid, sizeof(existing->vol_uuid), "%s",
			 vol_uuid);
	}
}

int vmfsd_host_claim(struct vmfsd_host *h, const struct vmfsd_mount_rec *rec,
		   struct vmfsd_mount_rec *existing)
{
	struct vmfsd_mount_rec r;
	struct host_claim *c;
	char path[PATH_MAX];
	TCHDB *db;
	int fd, ret, cret;

	if (!host_uuid_valid(rec->vol_uuid))
		return -EINVAL;
	ret = host_mkdir_p(h->dir);
	if (ret)
		return ret;
	if (snprintf(path, sizeof(path), "%s/vol-%s.lock", h->dir,
		     rec->vol_uuid) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = -errno;
		close(fd);
		if (ret != -EWOULDBLOCK)
			return ret;
		if (existing)
			host_fill_existing(h, rec->vol_uuid, existing);
		return -EBUSY;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	r = *rec;
	if (r.pid <= 0)
		r.pid = getpid();

	/* Ours now: a record left by a dead claimant is simply replaced. */
	pthread_mutex_lock(&host_db_mutex);
	ret = host_db_open(h, true, &db);
	if (!ret) {
		ret = host_rec_put(db, &r);
		cret = host_db_close(db);
		if (!ret)
			ret = cret;
	}
	pthread_mutex_unlock(&host_db_mutex);
	if (ret) {
		free(c);
		close(fd);
		return ret;
	}

	memcpy(c->vol_uuid, r.vol_uuid, sizeof(c->vol_uuid));
	c->fd = fd;
	pthread_mutex_lock(&h->lock);
	c->next = h->claims;
	h->claims = c;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int vmfsd_host_release(struct vmfsd_host *h, const char *vol_uuid)
{
	struct host_claim **pp, *c = NULL;
	TCHDB *db;
	int ret, cret;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->claims; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->vol_uuid, vol_uuid)) {
			c = *pp;
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (!c)
		return -ENOENT;

	/* Record first, lock second: the next claimant writes after us. */
	pthread_mutex_lock(&host_db_mutex);
	ret = host_db_open(h, true, &db);
	if (!ret) {
		ret = host_rec_del(db, vol_uuid);
		cret = host_db_close(db);
		if (!ret)
			ret = cret;
	}
	pthread_mutex_unlock(&host_db_mutex);
	close(c->fd);
	free(c);
	return ret;
}

/*
 * Every readable record, with the stale ones deleted when the DB is
 * writable.  *recs is malloc'd.  Corrupt records are skipped, and kept:
 * a newer vmfs may have written them.
 */
static int host_rec_scan(struct vmfsd_host *h, struct vmfsd_mount_rec **recs,
			 size_t *nrecs)
{
	struct vmfsd_mount_rec *out = NULL, *grown, r;
	char **stale = NULL, **sgrown;
	size_t n = 0, cap = 0, nstale = 0, scap = 0, i;
	size_t plen = strlen(HOST_KEY_MOUNT);
	bool writable;
	TCHDB *db;
	char *key;
	int klen, ret, cret;

	*recs = NULL;
	*nrecs = 0;
	pthread_mutex_lock(&host_db_mutex);
	ret = host_db_open_any(h, &db, &writable);
	if (ret)
		goto out_unlock;
	if (!tchdbiterinit(db)) {
		ret = host_tc_errno(tchdbecode(db));
		goto out_close;
	}
	while ((key = tchdbiternext(db, &klen)) != NULL) {
		bool ours = (size_t)klen == plen + 36 &&
			    !memcmp(key, HOST_KEY_MOUNT, plen) &&
			    host_uuid_valid(key + plen);

		if (!ours || host_rec_get(db, key + plen, &r)) {
			free(key);
			continue;
		}
		if (!host_rec_live(&r)) {
			if (writable && nstale == scap) {
				scap = scap ? 2 * scap : 8;
				sgrown = realloc(stale, scap * sizeof(*stale));
				if (!sgrown) {
					free(key);
					ret = -ENOMEM;
					goto out_close;
				}
				stale = sgrown;
			}
			if (writable)
				stale[nstale++] = key;
			else
				free(key);
			continue;
		}
		free(key);
		if (n == cap) {
			cap = cap ? 2 * cap : 4;
			grown = realloc(out, cap * sizeof(*out));
			if (!grown) {
				ret = -ENOMEM;
				goto out_close;
			}
			out = grown;
		}
		out[n++] = r;
	}
	/* Delete after iterating: the iterator does not survive changes. */
	for (i = 0; i < nstale; i++)
		host_rec_del(db, stale[i] + plen);
out_close:
	cret = host_db_close(db);
	if (!ret)
		ret = cret;
out_unlock:
	pthread_mutex_unlock(&host_db_mutex);
	for (i = 0; i < nstale; i++)
		free(stale[i]);
	free(stale);
	if (ret) {
		free(out);
		return ret;
	}
	*recs = out;
	*nrecs = n;
	return 0;
}

int vmfsd_host_find(struct vmfsd_host *h, const char *vol_uuid,
		  const char *mountpoint, struct vmfsd_mount_rec *out)
{
	struct vmfsd_mount_rec *recs;
	size_t n, i;
	int ret;

	if ((!vol_uuid && !mountpoint) || (vol_uuid && !host_uuid_valid(vol_uuid)))
		return -EINVAL;
	ret = host_rec_scan(h, &recs, &n);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < n; i++) {
		if (vol_uuid && strcmp(recs[i].vol_uuid, vol_uuid))
			continue;
		if (mountpoint && strcmp(recs[i].mountpoint, mountpoint))
			continue;
		*out = recs[i];
		ret = 0;
		break;
	}
	free(recs);
	return ret;
}

int vmfsd_host_list(struct vmfsd_host *h,
		  int (*cb)(void *ctx, const struct vmfsd_mount_rec *r),
		  void *ctx)
{
	struct vmfsd_mount_rec *recs;
	size_t n, i;
	int ret;

	ret = host_rec_scan(h, &recs, &n);
	if (ret)
		return ret;
	/* Called with no lock held: cb may use the host state itself. */
	for (i = 0; i < n && !ret; i++)
		ret = cb(ctx, &recs[i]);
	free(recs);
	return ret;
}
