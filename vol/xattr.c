/*
 * Extended attributes, packed in the inode's 1280-byte xattr area
 * (format.h: records of name length, value length, name, value).  There
 * is no overflow block: a set that does not fit fails with ENOSPC, as on
 * ext4 without an xattr block.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include "vol_int.h"

#define REC_HDR sizeof(struct vmfs_xattr_rec)

static struct vmfs_inode *di_of(struct vinode *vi)
{
	return (struct vmfs_inode *)(vi->blk + VMFS_OBJ_OFFSET);
}

/* Find name; returns its offset in the area or -1.  *rec_len gets its size. */
static int find(struct vinode *vi, const char *name, size_t nlen,
		size_t *rec_len)
{
	struct vmfs_inode *di = di_of(vi);
	size_t used = fmt_xattr_len(di), off = 0;

	while (off + REC_HDR <= used) {
		size_t rn, rv, len;

		fmt_xattr_rec_decode(di->di_xattr + off, &rn, &rv);
		len = REC_HDR + rn + rv;
		if (off + len > used)
			break;
		if (rn == nlen &&
		    !memcmp(di->di_xattr + off + REC_HDR, name, nlen)) {
			*rec_len = len;
			return (int)off;
		}
		off += len;
	}
	return -1;
}

static void cut(struct vinode *vi, size_t off, size_t len)
{
	struct vmfs_inode *di = di_of(vi);
	size_t used = fmt_xattr_len(di);

	memmove(di->di_xattr + off, di->di_xattr + off + len, used - off - len);
	memset(di->di_xattr + used - len, 0, len);
	fmt_xattr_set_len(di, (uint16_t)(used - len));
}

static int setxattr_body(struct vol *v, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	VOL_HANDLE(v);
	size_t nlen = strlen(name), rlen, used;
	struct vinode *vi;
	struct vmfs_inode *di;
	uint8_t saved[VMFS_XATTR_AREA];
	uint16_t saved_len;
	int off, ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	if (!nlen || nlen > 255)
		return -ERANGE;
	if (size > VMFS_XATTR_AREA)
		return -E2BIG;
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&vi->rw);
	di = di_of(vi);
	memcpy(saved, di->di_xattr, sizeof(saved));
	saved_len = di->di_xattr_len;
	off = find(vi, name, nlen, &rlen);
	if (off >= 0 && (flags & XATTR_CREATE)) {
		ret = -EEXIST;
		goto out;
	}
	if (off < 0 && (flags & XATTR_REPLACE)) {
		ret = -ENODATA;
		goto out;
	}
	if (off >= 0)
		cut(vi, (size_t)off, rlen);
	used = fmt_xattr_len(di);
	if (used + REC_HDR + nlen + size > VMFS_XATTR_AREA) {
		ret = -ENOSPC;
		goto restore;
	}
	fmt_xattr_rec_encode(di->di_xattr + used, nlen, size);
	memcpy(di->di_xattr + used + REC_HDR, name, nlen);
	memcpy(di->di_xattr + used + REC_HDR + nlen, value, size);
	fmt_xattr_set_len(di, (uint16_t)(used + REC_HDR + nlen + size));
	vol_inode_touch(vi, false, true);
	ret = vol_inode_write(v, vi);
	if (!ret)
		goto out;
restore:
	memcpy(di->di_xattr, saved, sizeof(saved));
	di->di_xattr_len = saved_len;
out:
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

static ssize_t getxattr_body(struct vol *v, uint64_t ino, const char *name,
		     void *buf, size_t size)
{
	struct vinode *vi;
	size_t rlen, nlen = strlen(name);
	int off, ret;

	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&vi->rw);
	off = find(vi, name, nlen, &rlen);
	if (off < 0) {
		ret = -ENODATA;
	} else {
		size_t vlen = rlen - REC_HDR - nlen;

		if (size && size < vlen)
			ret = -ERANGE;
		else {
			if (size)
				memcpy(buf, di_of(vi)->di_xattr + off + REC_HDR + nlen,
				       vlen);
			ret = (int)vlen;
		}
	}
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

static ssize_t listxattr_body(struct vol *v, uint64_t ino, char *buf, size_t size)
{
	struct vinode *vi;
	struct vmfs_inode *di;
	size_t used, off = 0, total = 0;
	int ret;

	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&vi->rw);
	di = di_of(vi);
	used = fmt_xattr_len(di);
	while (off + REC_HDR <= used) {
		size_t rn, rv, len;

		fmt_xattr_rec_decode(di->di_xattr + off, &rn, &rv);
		len = REC_HDR + rn + rv;
		if (off + len > used)
			break;
		if (size) {
			if (total + rn + 1 > size) {
				ret = -ERANGE;
				break;
			}
			memcpy(buf + total, di->di_xattr + off + REC_HDR, rn);
			buf[total + rn] = 0;
		}
		total += rn + 1;
		off += len;
	}
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret ? ret : (ssize_t)total;
}

static int removexattr_body(struct vol *v, uint64_t ino, const char *name)
{
	VOL_HANDLE(v);
	struct vinode *vi;
	size_t rlen;
	int off, ret;

	if (vol_is_rdonly(v))
		return -EROFS;
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&vi->rw);
	off = find(vi, name, strlen(name), &rlen);
	if (off < 0) {
		ret = -ENODATA;
	} else {
		cut(vi, (size_t)off, rlen);
		vol_inode_touch(vi, false, true);
		ret = vol_inode_write(v, vi);
	}
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

/*
 * The multi-writer flag of a VM disk (VMFS_DI_MULTIWRITER, SPEC §12) is
 * the attribute VOL_XATTR_MULTIWRITER, "on" or "off": set, it lets every
 * host open the file for writing at once (a shared MULTIWRITER lock),
 * which only an eagerzeroedthick disk can take (writes never change its
 * metadata: every block allocated and zeroed, no to-be-zeroed flag).
 * Setting it takes the inode's lock exclusive, so no host may have the
 * file open.
 */
static int multiwriter_set(struct vol *v, uint64_t ino, const void *value,
			   size_t size)
{
	VOL_HANDLE(v);
	char type[32];
	struct vinode *vi;
	bool on;
	ssize_t n;
	int ret;

	if (size == 2 && !memcmp(value, "on", 2))
		on = true;
	else if (size == 3 && !memcmp(value, "off", 3))
		on = false;
	else
		return -EINVAL;
	n = getxattr_body(v, ino, "trusted.vmfs.disk_type", type,
			  sizeof(type) - 1);
	if (on && (n != 16 || memcmp(type, "eagerzeroedthick", 16)))
		return -EINVAL;
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&vi->rw);
	if (!S_ISREG(vi->mode)) {
		ret = -EINVAL;
	} else if (!!(vi->flags & VMFS_DI_MULTIWRITER) != on) {
		vi->flags ^= VMFS_DI_MULTIWRITER;
		vol_inode_touch(vi, false, true);
		ret = vol_inode_write(v, vi);
	}
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

static ssize_t multiwriter_get(struct vol *v, uint64_t ino, void *buf,
			       size_t size)
{
	struct vinode *vi;
	const char *val;
	int ret = vol_inode_get(v, ino, &vi);

	if (ret)
		return ret;
	val = vi->flags & VMFS_DI_MULTIWRITER ? "on" : "off";
	vol_inode_put(v, vi);
	if (size && size < strlen(val))
		return -ERANGE;
	if (size)
		memcpy(buf, val, strlen(val));
	return (ssize_t)strlen(val);
}

/* Each under the inode's lock while the volume is shared (cluster.c). */
int vol_setxattr(struct vol *v, uint64_t ino, const char *name,
		 const void *value, size_t size, int flags)
{
	VCL_OP(v);
	int ret = vcl_lock_ino(v, ino, VMFS_LOCK_EXCLUSIVE);

	if (!ret && !strcmp(name, VOL_XATTR_MULTIWRITER))
		ret = vol_is_rdonly(v) ? -EROFS :
		      multiwriter_set(v, ino, value, size);
	else if (!ret)
		ret = setxattr_body(v, ino, name, value, size, flags);
	return VCL_END(v, ret);
}

ssize_t vol_getxattr(struct vol *v, uint64_t ino, const char *name,
		     void *buf, size_t size)
{
	VCL_OP(v);
	ssize_t ret = vcl_lock_ino(v, ino, VMFS_LOCK_READONLY);

	if (!ret && !strcmp(name, VOL_XATTR_MULTIWRITER))
		ret = multiwriter_get(v, ino, buf, size);
	else if (!ret)
		ret = getxattr_body(v, ino, name, buf, size);
	return VCL_END(v, (int)ret);
}

ssize_t vol_listxattr(struct vol *v, uint64_t ino, char *buf, size_t size)
{
	VCL_OP(v);
	ssize_t ret = vcl_lock_ino(v, ino, VMFS_LOCK_READONLY);

	if (!ret)
		ret = listxattr_body(v, ino, buf, size);
	return VCL_END(v, (int)ret);
}

int vol_removexattr(struct vol *v, uint64_t ino, const char *name)
{
	VCL_OP(v);
	int ret = vcl_lock_ino(v, ino, VMFS_LOCK_EXCLUSIVE);

	if (!ret)
		ret = removexattr_body(v, ino, name);
	return VCL_END(v, ret);
}
