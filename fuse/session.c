/*
 * The FUSE session: mount, connection parameters, the multi-threaded
 * request loop, stop and unmount, and the per-worker I/O buffers.
 *
 * Request size: libfuse 3.14 sizes its receive buffer for the kernel's
 * largest request (FUSE_MAX_MAX_PAGES = 256 pages plus a header) and, when
 * the kernel offers FUSE_MAX_PAGES, answers INIT with
 * max_pages = max_write / page size (lib/fuse_lowlevel.c do_init).  So
 * max_write = 1 MiB in init() is what gets 1 MiB reads and writes, one
 * request per VM disk block, instead of the kernel's 128 KiB default.
 *
 * Threads: every worker reads its own /dev/fuse clone (clone_fd), so
 * requests are handed out by the kernel without a shared lock, and no
 * worker ever exits while idle (max_idle_threads = max_threads), so its
 * 1 MiB aligned buffer is allocated once.  The workers block in the
 * engine on LUN I/O most of the time; 16 of them keep two cores and the
 * LUN's queue busy.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <fuse_opt.h>
#include "vmfs/log.h"

#include "vfuse_int.h"

/* Workers' buffers are at least this big: one largest request. */
#define VFUSE_TBUF_MIN (VFUSE_MAX_IO + 64 * 1024)

struct vfuse_tbuf {
	void *buf;
	size_t size;
};

static void vfuse_tbuf_free(void *p)
{
	struct vfuse_tbuf *tb = p;

	if (!tb)
		return;
	lun_buf_free(tb->buf);
	free(tb);
}

/*
 * The calling worker's aligned buffer, at least len bytes; NULL when out
 * of memory.  Valid until the worker's next call (one request at a time).
 */
void *vfuse_tbuf(struct vfuse *f, size_t len)
{
	struct vfuse_tbuf *tb = pthread_getspecific(f->tbuf_key);
	size_t size;
	void *buf;

	if (tb && tb->size >= len)
		return tb->buf;
	if (!tb) {
		tb = calloc(1, sizeof(*tb));
		if (!tb)
			return NULL;
		if (pthread_setspecific(f->tbuf_key, tb)) {
			free(tb);
			return NULL;
		}
	}
	size = len > VFUSE_TBUF_MIN ? (len + 0xffff) & ~(size_t)0xffff
				    : VFUSE_TBUF_MIN;
	buf = lun_buf_alloc(size);
	if (!buf)
		return NULL;
	lun_buf_free(tb->buf);
	tb->buf = buf;
	tb->size = size;
	return buf;
}

/* libfuse's own messages (and its request trace with -d) into our log. */
static void vfuse_log_bridge(enum fuse_log_level level, const char *fmt,
			     va_list ap)
{
	char msg[512];
	size_t n;

	n = (size_t)snprintf(msg, sizeof(msg), "libfuse: ");
	vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* fuse_log_level uses syslog's numbering. */
	vmfs_log_external(__func__, __FILE__, (uint8_t)level, __LINE__, msg);
}

static void vfuse_op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vfuse *f = userdata;
	unsigned want;

	/*
	 * ASYNC_READ, ASYNC_DIO: several reads (and an AIO submitter's
	 * writes) of one file in flight at once.  PARALLEL_DIROPS: lookups
	 * and readdirs in one directory in parallel; the engine locks.
	 * ATOMIC_O_TRUNC: O_TRUNC arrives with open (see vfuse_op_open).
	 * EXPORT_SUPPORT: lookups of "." and ".." for NFS re-export.
	 * AUTO_INVAL_DATA: a changed mtime or size seen in getattr drops the
	 * page cache, which is how buffered readers see other hosts' writes.
	 * SPLICE_READ: write data reaches us through a pipe holding the
	 * writer's pages, so it is copied once (into the worker's aligned
	 * buffer) instead of twice: ~30% less daemon CPU for 1 MiB writes.
	 * The price is one or two more system calls per small request
	 * (splice, then read), within the noise of 4 KiB benchmarks here.
	 * libfuse falls back to read() when it cannot grow the pipe to
	 * 1 MiB (no CAP_SYS_RESOURCE).
	 *
	 * Left off: WRITEBACK_CACHE (writes must reach the LUN before they
	 * complete, and another host may read them at once), SPLICE_WRITE and
	 * SPLICE_MOVE (replies are written from our buffer, one copy anyway),
	 * HANDLE_KILLPRIV (the kernel clears set-ID bits with a setattr
	 * instead of the engine guessing), POSIX/FLOCK_LOCKS (the kernel keeps
	 * locks host-local; cluster-wide exclusion comes from vmfs locks),
	 * CACHE_SYMLINKS (another host may replace a symlink).
	 */
	want = FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS |
	       FUSE_CAP_ASYNC_DIO | FUSE_CAP_READDIRPLUS |
	       FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_ATOMIC_O_TRUNC |
	       FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_AUTO_INVAL_DATA |
	       FUSE_CAP_SPLICE_READ;
	conn->want = want & conn->capable;

	conn->max_write = VFUSE_MAX_IO;
	/*
	 * Readahead can only shrink from what the kernel offers (the bdi's,
	 * 128 KiB unless raised in /sys/class/bdi/0:N/read_ahead_kb).
	 */
	if (conn->max_readahead > VFUSE_MAX_IO)
		conn->max_readahead = VFUSE_MAX_IO;
	/*
	 * Asynchronous direct I/O and readahead are "background" requests,
	 * 12 at a time by default: let every worker have a couple queued.
	 */
	conn->max_background = 4 * f->max_threads;
	if (conn->max_background > 1024)
		conn->max_background = 1024;
	conn->congestion_threshold = conn->max_background * 3 / 4;
	conn->time_gran = 1;

	qb_log(LOG_INFO, "fuse: protocol %u.%u, max_write %u, "
	       "max_readahead %u, max_background %u, capabilities 0x%x "
	       "(wanted 0x%x, kernel lacks 0x%x)",
	       conn->proto_major, conn->proto_minor, conn->max_write,
	       conn->max_readahead, conn->max_background, conn->want, want,
	       want & ~conn->capable);
}

static const struct fuse_lowlevel_ops vfuse_ops = {
	.init         = vfuse_op_init,
	.lookup       = vfuse_op_lookup,
	.forget       = vfuse_op_forget,
	.forget_multi = vfuse_op_forget_multi,
	.getattr      = vfuse_op_getattr,
	.setattr      = vfuse_op_setattr,
	.readlink     = vfuse_op_readlink,
	.mknod        = vfuse_op_mknod,
	.mkdir        = vfuse_op_mkdir,
	.unlink       = vfuse_op_unlink,
	.rmdir        = vfuse_op_rmdir,
	.symlink      = vfuse_op_symlink,
	.rename       = vfuse_op_rename,
	.link         = vfuse_op_link,
	.open         = vfuse_op_open,
	.read         = vfuse_op_read,
	.write_buf    = vfuse_op_write_buf,
	.flush        = vfuse_op_flush,
	.release      = vfuse_op_release,
	.fsync        = vfuse_op_fsync,
	.opendir      = vfuse_op_opendir,
	.readdir      = vfuse_op_readdir,
	.readdirplus  = vfuse_op_readdirplus,
	.releasedir   = vfuse_op_releasedir,
	.fsyncdir     = vfuse_op_fsyncdir,
	.statfs       = vfuse_op_statfs,
	.setxattr     = vfuse_op_setxattr,
	.getxattr     = vfuse_op_getxattr,
	.listxattr    = vfuse_op_listxattr,
	.removexattr  = vfuse_op_removexattr,
	.create       = vfuse_op_create,
	.fallocate    = vfuse_op_fallocate,
};

void vfuse_opts_init(struct vfuse_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_threads = VFUSE_DEFAULT_THREADS;
}

/* "-o" option string: commas and backslashes in fsname are escaped. */
static int vfuse_mount_args(const struct vfuse_opts *o,
			    struct fuse_args *args)
{
	char *opts = NULL;
	char *fsname = NULL;
	int ret = -ENOMEM;

	if (fuse_opt_add_arg(args, "vmfsd") ||
	    (o->debug && fuse_opt_add_arg(args, "-d")))
		goto out;
	if (asprintf(&fsname, "fsname=%s", o->fsname ? o->fsname : "vmfs") < 0) {
		fsname = NULL;
		goto out;
	}
	/*
	 * default_permissions: the kernel checks modes, owners and sticky
	 * directories, as for a local file system; the engine trusts the
	 * uid and gid it is given.  It must stay: a path step the kernel
	 * finds in its cache (fuse/kcache.c) reaches us as no request at
	 * all, so search permission could not be checked here
	 * (tests/integration/t_perms.sh, docs/OPERATIONS.md).
	 */
	if (fuse_opt_add_opt(&opts, "subtype=vmfs,default_permissions") ||
	    fuse_opt_add_opt_escaped(&opts, fsname) ||
	    (o->allow_other && fuse_opt_add_opt(&opts, "allow_other")) ||
	    (o->rdonly && fuse_opt_add_opt(&opts, "ro")))
		goto out;
	if (fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opts))
		goto out;
	ret = 0;
out:
	free(opts);
	free(fsname);
	return ret;
}

int vfuse_mount(struct vol *v, const struct vfuse_opts *o, struct vfuse **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct vfuse *f;
	int ret;

	*out = NULL;
	if (!o->mountpoint || !*o->mountpoint)
		return -EINVAL;
	if (o->max_threads > VFUSE_MAX_THREADS)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->v = v;
	f->max_threads = o->max_threads ? o->max_threads : VFUSE_DEFAULT_THREADS;
	f->mountpoint = strdup(o->mountpoint);
	if (!f->mountpoint) {
		free(f);
		return -ENOMEM;
	}
	ret = vfuse_kc_init(f);
	if (ret)
		goto err_free;
	ret = -pthread_key_create(&f->tbuf_key, vfuse_tbuf_free);
	if (ret)
		goto err_kc;

	fuse_set_log_func(vfuse_log_bridge);
	ret = vfuse_mount_args(o, &args);
	if (ret)
		goto err_key;
	f->se = fuse_session_new(&args, &vfuse_ops, sizeof(vfuse_ops), f);
	if (!f->se) {
		ret = -EINVAL;
		goto err_args;
	}
	errno = 0;
	if (fuse_session_mount(f->se, f->mountpoint)) {
		ret = errno ? -errno : -EIO;
		goto err_session;
	}
	fuse_opt_free_args(&args);
	vfuse_kc_start(f);
	*out = f;
	return 0;

err_session:
	fuse_session_destroy(f->se);
err_args:
	fuse_opt_free_args(&args);
err_key:
	pthread_key_delete(f->tbuf_key);
err_kc:
	vfuse_kc_fini(f);
err_free:
	free(f->mountpoint);
	free(f);
	return ret;
}

int vfuse_run(struct vfuse *f)
{
	struct fuse_loop_config *cfg;
	int ret;

	if (f->stop)
		return 0;
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, f->max_threads);
	fuse_loop_cfg_set_idle_threads(cfg, f->max_threads);
	qb_log(LOG_INFO, "fuse: serving %s with up to %u threads",
	       f->mountpoint, f->max_threads);
	ret = fuse_session_loop_mt(f->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	if (ret > 0)
		ret = -EIO;
	if (ret < 0)
		qb_log(LOG_ERR, "fuse: session on %s failed: %s", f->mountpoint,
		       strerror(-ret));
	return ret;
}

void vfuse_stop(struct vfuse *f)
{
	int saved_errno = errno;

	f->stop = 1;
	/* Only sets a flag: async-signal-safe. */
	fuse_session_exit(f->se);
	errno = saved_errno;
}

int vfuse_umount_path(const char *mountpoint)
{
	int status;
	pid_t pid;

	if (geteuid() == 0)
		return umount2(mountpoint, 0) ? -errno : 0;
	/* Unprivileged FUSE mounts are undone by the setuid helper. */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", mountpoint,
		       (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return -EPERM;
}

void vfuse_unmount_destroy(struct vfuse *f)
{
	if (!f)
		return;
	/*
	 * Lazy (MNT_DETACH) if still mounted: processes that still hold
	 * files open get ENOTCONN once the session is gone.
	 */
	vfuse_kc_fini(f);
	fuse_session_unmount(f->se);
	fuse_session_destroy(f->se);
	pthread_key_delete(f->tbuf_key);
	free(f->mountpoint);
	free(f);
}
