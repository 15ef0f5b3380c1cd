/*
 * This daemon's I/O on its own mount, made by a child process.
 *
 * vmfsd serves its mount, and also reads and writes files on it: VM
 * configs, run records, QEMU logs, the walk of the VM directories for HA.
 * A thread that makes such a request waits in the kernel for the answer,
 * uninterruptibly once the request has reached our FUSE threads.  Should
 * vmfsd be killed (kill -9) at that moment, the FUSE threads die and
 * nobody answers; the waiting thread keeps the process's files open,
 * /dev/fuse among them, so the kernel never aborts the connection, and
 * vmfsd never ends: an unkillable process that holds the mount (and the
 * host's slot in the volume stays "live" for others until the lease runs
 * out, while the admin cannot restart the daemon).
 *
 * So vmfsd makes none of them itself.  Each is made by a short-lived child,
 * `vmfsd --mount-io OP PATH` (this binary, exec'd: the caller is threaded),
 * which holds no /dev/fuse descriptor.  The caller waits on a pipe, which
 * a kill interrupts.  When vmfsd dies its descriptors close, the kernel
 * aborts the connection, and the child's request fails (ENOTCONN); the
 * child is also sent SIGKILL by PR_SET_PDEATHSIG.  QEMU opens its log the
 * same way (vmfsd_spawn opens it in the child).
 *
 * The child answers on its stdout: struct mio_hdr, the error message
 * (errlen bytes), the payload (len bytes).  Payloads are the hypervisor
 * library's structs as they lie in memory: the child is this binary.
 * Only ha-write reads anything (a struct hv_ha_state) on its stdin.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmfs/hypervisor.h"
#include "vmfsd_int.h"

struct mio_hdr {
	int32_t ret;
	uint32_t errlen;
	uint32_t len;
};

#define MIO_ERR_MAX   1024
/* The most any answer may hold: a walk of MIO_WALK_MAX records. */
#define MIO_OUT_MAX   (MIO_WALK_MAX * (sizeof(struct mio_rec) + PATH_MAX + \
				      MIO_ERR_MAX) + 4096)
/* Run records a walk reports at most (HA VMs and unreadable records). */
#define MIO_WALK_MAX  4096
/* Text files read whole (configs) are at most this long. */
#define MIO_TEXT_MAX  (64 * 1024)

/* One run record found by a walk, followed by its path (inside the
 * volume) and error message. */
struct mio_rec {
	int32_t ret;
	uint32_t pathlen;
	uint32_t errlen;
	struct hv_ha_state s;
};

/* ---- the child ---- */

struct mio_buf {
	char *p;
	size_t len, cap;
};

static int mio_put(struct mio_buf *b, const void *p, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->p, cap);
		if (!n)
			return -ENOMEM;
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	return 0;
}

static int mio_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read fd to its end into b, at most max bytes (-EFBIG beyond). */
static int mio_read_all(int fd, struct mio_buf *b, size_t max)
{
	char chunk[16384];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return 0;
		if (b->len + (size_t)n > max)
			return -EFBIG;
		if (mio_put(b, chunk, (size_t)n))
			return -ENOMEM;
	}
}

static int mio_reply(int ret, const char *err, const void *p, size_t len)
{
	struct mio_hdr h = { .ret = ret, .errlen = (uint32_t)strlen(err),
			     .len = (uint32_t)len };

	if (mio_write_all(1, &h, sizeof(h)) || mio_write_all(1, err, h.errlen) ||
	    (len && mio_write_all(1, p, len)))
		return VMFSD_EXIT_FAIL;
	return VMFSD_EXIT_OK;
}

/* The run records under dir (depth 1 or 2 below the top, as `vmfs vm
 * list` looks): those of HA VMs, and those that cannot be read. */
static void mio_walk(const char *dir, size_t toplen, int depth,
		     struct mio_buf *out, unsigned *n)
{
	DIR *dh = opendir(dir);
	struct dirent *e;

	if (!dh)
		return;
	while ((e = readdir(dh)) && *n < MIO_WALK_MAX) {
		char sub[PATH_MAX], err[256] = "";
		struct mio_rec r;
		struct stat st;

		/* Only directories hold VMs: no stat of every file in a busy
		 * directory, each of which would take its lock from the host
		 * working there. */
		if (e->d_name[0] == '.' ||
		    (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) ||
		    snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >=
		    (int)sizeof(sub) || stat(sub, &st) || !S_ISDIR(st.st_mode))
			continue;
		memset(&r, 0, sizeof(r));
		r.ret = hv_ha_state_read(sub, &r.s, err, sizeof(err));
		if (r.ret == -ENOENT) {
			char cfg[PATH_MAX + 16];

			snprintf(cfg, sizeof(cfg), "%s/%s", sub, HV_CONFIG_NAME);
			if (depth < 2 && access(cfg, F_OK))
				mio_walk(sub, toplen, depth + 1, out, n);
			continue;
		}
		if (!r.ret && !r.s.ha)
			continue;
		r.pathlen = (uint32_t)strlen(sub + toplen);
		r.errlen = (uint32_t)strlen(err);
		if (mio_put(out, &r, sizeof(r)) ||
		    mio_put(out, sub + toplen, r.pathlen) ||
		    mio_put(out, err, r.errlen))
			break;
		(*n)++;
	}
	closedir(dh);
}

/* The last len - 1 bytes of the file at p, trailing newlines cut. */
static int mio_tail(const char *p, char *buf, size_t len)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	off_t end;

	if (fd < 0)
		return -errno;
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > (off_t)len - 1 ? end - (off_t)len + 1 : 0, SEEK_SET);
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = 0;
	return 0;
}

int vmfsd_mio_main(int argc, char **argv)
{
	const char *op = argc == 4 ? argv[2] : "", *p = argc == 4 ? argv[3] : "";
	char err[MIO_ERR_MAX] = "";
	int ret;

	if (!strcmp(op, "ha-read")) {
		struct hv_ha_state s;

		ret = hv_ha_state_read(p, &s, err, sizeof(err));
		return mio_reply(ret, err, &s, sizeof(s));
	}
	if (!strcmp(op, "ha-write")) {
		struct mio_buf in = { 0 };
		struct hv_ha_state s;

		ret = mio_read_all(0, &in, sizeof(s));
		if (!ret && in.len != sizeof(s))
			ret = -EPROTO;
		if (!ret) {
			memcpy(&s, in.p, sizeof(s));
			ret = hv_ha_state_write(p, &s);
		}
		free(in.p);
		return mio_reply(ret, err, NULL, 0);
	}
	if (!strcmp(op, "ha-clear"))
		return mio_reply(hv_ha_state_clear(p), err, NULL, 0);
	if (!strcmp(op, "config-load")) {
		struct hv_config *c = calloc(1, sizeof(*c));

		ret = c ? hv_config_load(p, c, err, sizeof(err)) : -ENOMEM;
		ret = mio_reply(ret, err, c, ret || !c ? 0 : sizeof(*c));
		free(c);
		return ret;
	}
	if (!strcmp(op, "read")) {
		struct mio_buf text = { 0 };
		int fd = open(p, O_RDONLY | O_CLOEXEC);

		ret = fd < 0 ? -errno : mio_read_all(fd, &text, MIO_TEXT_MAX);
		if (fd >= 0)
			close(fd);
		ret = mio_reply(ret, err, text.p, ret ? 0 : text.len);
		free(text.p);
		return ret;
	}
	if (!strcmp(op, "tail")) {
		char buf[512];

		ret = mio_tail(p, buf, sizeof(buf));
		return mio_reply(ret, err, buf, ret ? 0 : strlen(buf));
	}
	if (!strcmp(op, "touch")) {
		int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		ret = fd < 0 ? -errno : 0;
		if (fd >= 0 && close(fd))
			ret = -errno;
		return mio_reply(ret, err, NULL, 0);
	}
	if (!strcmp(op, "ha-walk")) {
		struct mio_buf out = { 0 };
		unsigned n = 0;

		mio_walk(p, strlen(p), 1, &out, &n);
		ret = mio_reply(0, err, out.p, out.len);
		free(out.p);
		return ret;
	}
	fprintf(stderr, "vmfsd --mount-io is vmfsd's own helper (it reads and "
		"writes files on vmfsd's mount for it); it is not for use by "
		"hand\n");
	return VMFSD_EXIT_USAGE;
}

/* ---- the caller ---- */

/* Run `vmfsd --mount-io op path` with in on its stdin; its answer's
 * payload into *out (malloc'd, *outlen bytes; NULL when empty) and its
 * error message into err.  Returns the operation's result. */
static int mio_call(const char *op, const char *path, const void *in,
		    size_t inlen, void **out, size_t *outlen, char *err,
		    size_t errlen)
{
	char *argv[] = { "vmfsd", "--mount-io", (char *)op, (char *)path, NULL };
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, status = 0, ret;
	struct mio_buf b = { 0 };
	struct mio_hdr h;
	pid_t pid = -1;

	if (out)
		*out = NULL;
	if (outlen)
		*outlen = 0;
	if (err && errlen)
		err[0] = 0;
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)) {
		ret = -errno;
		goto spawn_fail;
	}
	pid = vmfsd_spawn("/proc/self/exe", argv, pin[0], pout[1], NULL);
	ret = pid < 0 ? -errno : 0;
	close(pin[0]);
	close(pout[1]);
	if (ret) {
		close(pin[1]);
		close(pout[0]);
		goto spawn_fail;
	}
	if (inlen)
		mio_write_all(pin[1], in, inlen);  /* a short read: -EPROTO */
	close(pin[1]);
	ret = mio_read_all(pout[0], &b, MIO_OUT_MAX);
	close(pout[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ret || b.len < sizeof(h))
		goto bad_answer;
	memcpy(&h, b.p, sizeof(h));
	if (sizeof(h) + (size_t)h.errlen + h.len != b.len)
		goto bad_answer;
	if (err && errlen)
		snprintf(err, errlen, "%.*s", (int)h.errlen, b.p + sizeof(h));
	if (h.len && out) {
		memmove(b.p, b.p + sizeof(h) + h.errlen, h.len);
		*out = b.p;
		b.p = NULL;
	}
	if (outlen)
		*outlen = h.len;
	free(b.p);
	return h.ret;
bad_answer:
	free(b.p);
	if (err && errlen)
		snprintf(err, errlen, "vmfsd's helper for its own mount (%s %s) "
			 "%s", op, path, WIFSIGNALED(status) ? "was killed" :
			 "gave no answer; is the volume fenced or unmounting?");
	return -EIO;
spawn_fail:
	if (err && errlen)
		snprintf(err, errlen, "cannot run vmfsd's helper for its own "
			 "mount: %s", strerror(-ret));
	return ret;
}

/* A fixed-size answer into p; -EPROTO when it has another size. */
static int mio_call_into(const char *op, const char *path, void *p,
			 size_t len, char *err, size_t errlen)
{
	size_t got;
	void *out;
	int ret = mio_call(op, path, NULL, 0, &out, &got, err, errlen);

	if (!ret && got != len)
		ret = -EPROTO;
	if (!ret)
		memcpy(p, out, len);
	free(out);
	return ret;
}

int vmfsd_mio_ha_read(const char *vmdir, struct hv_ha_state *s, char *err,
		      size_t errlen)
{
	memset(s, 0, sizeof(*s));
	return mio_call_into("ha-read", vmdir, s, sizeof(*s), err, errlen);
}

int vmfsd_mio_ha_write(const char *vmdir, const struct hv_ha_state *s)
{
	return mio_call("ha-write", vmdir, s, sizeof(*s), NULL, NULL, NULL, 0);
}

int vmfsd_mio_ha_clear(const char *vmdir)
{
	return mio_call("ha-clear", vmdir, NULL, 0, NULL, NULL, NULL, 0);
}

int vmfsd_mio_config_load(const char *vmdir, struct hv_config *c, char *err,
			  size_t errlen)
{
	return mio_call_into("config-load", vmdir, c, sizeof(*c), err, errlen);
}

int vmfsd_mio_read_text(const char *path, char **text, char *err,
			size_t errlen)
{
	size_t len;
	void *out;
	int ret = mio_call("read", path, NULL, 0, &out, &len, err, errlen);

	*text = NULL;
	if (ret) {
		free(out);
		return ret;
	}
	*text = malloc(len + 1);
	if (*text) {
		if (len)
			memcpy(*text, out, len);
		(*text)[len] = 0;
	}
	free(out);
	return *text ? 0 : -ENOMEM;
}

void vmfsd_mio_tail(const char *path, char *msg, size_t len)
{
	char buf[512];
	size_t got;
	void *out;
	int ret = mio_call("tail", path, NULL, 0, &out, &got, NULL, 0);

	if (!ret)
		snprintf(buf, sizeof(buf), "%.*s", (int)got, (char *)out);
	free(out);
	if (!ret)
		snprintf(msg + strlen(msg), len - strlen(msg), ": %s",
			 buf[0] ? buf : "nothing (it is empty)");
}

int vmfsd_mio_touch(const char *path)
{
	return mio_call("touch", path, NULL, 0, NULL, NULL, NULL, 0);
}

int vmfsd_mio_ha_walk(const char *top, vmfsd_mio_walk_fn fn, void *arg)
{
	char err[256];
	size_t len, off = 0;
	void *out;
	int ret = mio_call("ha-walk", top, NULL, 0, &out, &len, err,
			   sizeof(err));

	while (!ret && off + sizeof(struct mio_rec) <= len) {
		struct mio_rec r;
		char path[PATH_MAX], rerr[256];
		const char *p = (const char *)out + off + sizeof(r);

		memcpy(&r, (const char *)out + off, sizeof(r));
		if (r.pathlen >= sizeof(path) || off + sizeof(r) +
		    r.pathlen + r.errlen > len) {
			ret = -EPROTO;
			break;
		}
		snprintf(path, sizeof(path), "%.*s", (int)r.pathlen, p);
		snprintf(rerr, sizeof(rerr), "%.*s", (int)r.errlen,
			 p + r.pathlen);
		off += sizeof(r) + r.pathlen + r.errlen;
		if (fn(arg, path, r.ret, &r.s, rerr))
			break;
	}
	free(out);
	return ret;
}
