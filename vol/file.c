/*
 * File data: reads, writes, truncation, fallocate and the change of a
 * file's map type as it grows (inline -> small blocks -> file blocks).
 *
 * Invariants that keep deleted data unreadable:
 *  - a block is zeroed on the LUN before the first write that does not
 *    cover it whole, and a to-be-zeroed (TBZ) block reads as zeros until
 *    then;
 *  - bytes past EOF inside the last block are zero: truncate zeroes them
 *    when it shrinks a file, so a later extension shows zeros;
 *  - freed blocks are never read again through the file that freed them.
 *
 * Data goes straight to the LUN (O_DIRECT): a sector-aligned request with
 * an aligned buffer is one lun I/O with no copy; anything else goes
 * through a per-thread bounce buffer, read-modify-write for partial
 * sectors, under the inode's write lock so two such writes cannot race.
 */
#include <errno.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vol_int.h"

#define BOUNCE_MAX (1024u * 1024)

static __thread uint8_t *tls_buf;
static __thread size_t tls_len;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* Frees a thread's scratch buffer when the thread exits. */
static void tls_free(void *buf)
{
	lun_buf_free(buf);
}

static void tls_key_init(void)
{
	pthread_key_create(&tls_key, tls_free);
}

/* A per-thread aligned scratch buffer of at least len bytes. */
static uint8_t *vol_tls_buf(size_t len)
{
	if (tls_len < len) {
		pthread_once(&tls_once, tls_key_init);
		lun_buf_free(tls_buf);
		tls_buf = lun_buf_alloc(len);
		tls_len = tls_buf ? len : 0;
		pthread_setspecific(tls_key, tls_buf);
	}
	return tls_buf;
}

static inline bool aligned(const struct vol *v, const void *buf,
			   uint64_t off, size_t len)
{
	return !(((uintptr_t)buf | off | len) & (v->ss - 1));
}

/*
 * The next bounce-buffer window of an unaligned transfer at off: the
 * sector-aligned start, where the caller's bytes begin in it, how many of
 * them fit, and the aligned length to transfer.
 */
struct window {
	uint64_t a;
	size_t skip, n, alen;
};

static void window_next(const struct vol *v, uint64_t off, size_t len,
			struct window *w)
{
	w->a = off & ~(uint64_t)(v->ss - 1);
	w->skip = off - w->a;
	w->n = len < BOUNCE_MAX - w->skip ? len : BOUNCE_MAX - w->skip;
	w->alen = (w->skip + w->n + v->ss - 1) & ~(size_t)(v->ss - 1);
}

static int dev_read(struct vol *v, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;

	if (aligned(v, buf, off, len))
		return lun_read(v->lun, buf, len, off);
	while (len) {
		uint8_t *b = vol_tls_buf(BOUNCE_MAX);
		struct window w;
		int ret;

		if (!b)
			return -ENOMEM;
		window_next(v, off, len, &w);
		ret = lun_read(v->lun, b, w.alen, w.a);
		if (ret)
			return ret;
		memcpy(out, b + w.skip, w.n);
		out += w.n;
		off += w.n;
		len -= w.n;
	}
	return 0;
}

/* Write any range; data == NULL writes zeros. */
static int dev_write(struct vol *v, uint64_t off, const void *data, size_t len)
{
	const uint8_t *in = data;

	if (data && aligned(v, data, off, len))
		return lun_write(v->lun, data, len, off);
	while (len) {
		uint8_t *b = vol_tls_buf(BOUNCE_MAX);
		struct window w;
		int ret = 0;

		if (!b)
			return -ENOMEM;
		window_next(v, off, len, &w);
		/* Read back only the partial sectors at either end. */
		if (w.skip)
			ret = lun_read(v->lun, b, v->ss, w.a);
		if (!ret && (w.skip + w.n) % v->ss && (w.alen > v->ss || !w.skip))
			ret = lun_read(v->lun, b + w.alen - v->ss, v->ss,
				       w.a + w.alen - v->ss);
		if (ret)
			return ret;
		if (in)
			memcpy(b + w.skip, in, w.n);
		else
			memset(b + w.skip, 0, w.n);
		ret = lun_write(v->lun, b, w.alen, w.a);
		if (ret)
			return ret;
		if (in)
			in += w.n;
		off += w.n;
		len -= w.n;
	}
	return 0;
}

/* Zero a byte range on the LUN: cheap for whole sectors, RMW at the ends. */
static int dev_zero(struct vol *v, uint64_t off, uint64_t len)
{
	uint64_t a = (off + v->ss - 1) & ~(uint64_t)(v->ss - 1);
	uint64_t e = (off + len) & ~(uint64_t)(v->ss - 1);
	int ret;

	if (a >= e)
		return dev_write(v, off, NULL, len);
	ret = a > off ? dev_write(v, off, NULL, a - off) : 0;
	if (!ret)
		ret = lun_zero_range(v->lun, a, e - a);
	if (!ret && off + len > e)
		ret = dev_write(v, e, NULL, off + len - e);
	return ret;
}

static uint8_t *inline_data(struct vinode *vi)
{
	return ((struct vmfs_inode *)(vi->blk + VMFS_OBJ_OFFSET))->di_inline;
}

/* Largest size a small-block file may have: it never needs indirection. */
static uint64_t small_max(const struct vol *v)
{
	uint64_t direct = (uint64_t)VMFS_NDIRECT * v->g.small_block_size;

	return direct < v->g.file_block_size ? direct : v->g.file_block_size;
}

int vol_file_read_locked(struct vol *v, struct vinode *vi, void *buf,
		     size_t len, uint64_t off)
{
	uint8_t *out = buf;
	uint64_t bs;
	size_t done = 0;

	if (off >= vi->size)
		return 0;
	if (len > vi->size - off)
		len = (size_t)(vi->size - off);
	if (vi->map_type == VMFS_MAP_INLINE) {
		memcpy(buf, inline_data(vi) + off, len);
		return (int)len;
	}
	bs = bmap_bsize(v, vi);
	while (done < len) {
		uint64_t lbn = (off + done) / bs, boff = (off + done) % bs;
		uint64_t p, run = bs - boff, dev;
		int ret;

		ret = vol_bmap_get(v, vi, lbn, &p);
		if (ret)
			return ret;
		if (!p || (p & VMFS_PTR_TBZ)) {
			if (run > len - done)
				run = len - done;
			memset(out + done, 0, run);
			done += run;
			continue;
		}
		/* Extend over physically contiguous written blocks. */
		dev = vmfs_ptr_addr(p) + boff;
		while (done + run < len) {
			uint64_t q;

			ret = vol_bmap_get(v, vi, lbn + 1, &q);
			if (ret)
				return ret;
			if (!q || (q & VMFS_PTR_TBZ) ||
			    vmfs_ptr_addr(q) != vmfs_ptr_addr(p) + bs)
				break;
			p = q;
			lbn++;
			run += bs;
		}
		if (run > len - done)
			run = len - done;
		ret = dev_read(v, dev, out + done, run);
		if (ret)
			return ret;
		done += run;
	}
	return (int)len;
}

/* Zero [off, off+len) of the file in place (no allocation). */
static int zero_in_file(struct vol *v, struct vinode *vi, uint64_t off,
			uint64_t len)
{
	uint64_t bs = bmap_bsize(v, vi);

	while (len) {
		uint64_t boff = off % bs, n = bs - boff, p;
		int ret;

		if (n > len)
			n = len;
		ret = vol_bmap_get(v, vi, off / bs, &p);
		if (ret)
			return ret;
		if (p && !(p & VMFS_PTR_TBZ)) {
			ret = dev_zero(v, vmfs_ptr_addr(p) + boff, n);
			if (ret)
				return ret;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* The object after the one block pointer p maps, or UINT64_MAX. */
static uint64_t ptr_next(struct vol *v, enum vmfs_res_type t, uint64_t p)
{
	int64_t pi = vol_res_index(v, t, vmfs_ptr_addr(p));

	return pi >= 0 ? (uint64_t)pi + 1 : UINT64_MAX;
}

/*
 * An object for every hole among blocks [first, last], all allocated
 * before any is mapped: mapping takes pointer blocks, whose clusters come
 * after the data's (docs/PROTOCOL.md §3), so an operation never waits for
 * a data cluster while it holds a pointer-block cluster.  *out
 * (malloc'ed, NULL without holes) lists them in block order, *nout long;
 * they belong to the running operation (undo.c), which frees them if it
 * fails.  ENOSPC when they are not all there.
 */
static int alloc_holes(struct vol *v, struct vinode *vi, uint64_t first,
		       uint64_t last, uint64_t **out, uint64_t *nout)
{
	enum vmfs_res_type t = bmap_res(vi);
	uint64_t n = 0, k = 0, hint = UINT64_MAX, *idx;
	int ret = 0;

	*out = NULL;
	*nout = 0;
	for (uint64_t lbn = first; lbn <= last; lbn++) {
		uint64_t p;

		ret = vol_bmap_get(v, vi, lbn, &p);
		if (ret)
			return ret;
		n += !p;
		if (p && hint == UINT64_MAX)
			hint = ptr_next(v, t, p);
	}
	if (!n)
		return 0;
	/* Files stay contiguous: the objects after the block before the
	 * range, or else after the range's first mapped one. */
	if (first) {
		uint64_t p;

		ret = vol_bmap_get(v, vi, first - 1, &p);
		if (ret)
			return ret;
		if (p)
			hint = ptr_next(v, t, p);
	}
	idx = malloc(n * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	while (k < n && !ret) {
		uint32_t want = n - k > 1u << 20 ? 1u << 20 : (uint32_t)(n - k);
		uint32_t got = 0;
		int err;

		ret = vol_res_alloc(v, t, hint, idx + k, want, &got);
		if (!got)
			break;
		err = vol_undo_note_alloc(vi, t, idx + k, got);
		if (err) {
			vol_res_free(v, t, idx + k, got);
			ret = err;
			break;
		}
		k += got;
		hint = idx[k - 1] + 1;
	}
	if (!ret && k < n)
		ret = -ENOSPC;
	if (ret) {
		free(idx);  /* the undo frees what was taken */
		return ret;
	}
	*out = idx;
	*nout = n;
	return 0;
}

/*
 * Give every block of bytes [off, end) a written (non-TBZ) block, mapped:
 * holes get new ones (alloc_holes), zeroed on the LUN unless the caller
 * is about to overwrite all of it, as are TBZ blocks.
 */
static int map_written(struct vol *v, struct vinode *vi, uint64_t off,
		       uint64_t end)
{
	enum vmfs_res_type t = bmap_res(vi);
	uint64_t bs = bmap_bsize(v, vi), *idx, n, k = 0;
	int ret;

	ret = alloc_holes(v, vi, off / bs, (end - 1) / bs, &idx, &n);
	for (uint64_t lbn = off / bs; !ret && lbn <= (end - 1) / bs; lbn++) {
		bool whole = off <= lbn * bs && end >= (lbn + 1) * bs;
		uint64_t p, addr;

		ret = vol_bmap_get(v, vi, lbn, &p);
		if (ret || (p && !(p & VMFS_PTR_TBZ)))
			continue;
		addr = p ? vmfs_ptr_addr(p) : res_addr(v, t, idx[k++]);
		if (!whole)
			ret = lun_zero_range(v->lun, addr, bs);
		if (!ret)
			ret = vol_bmap_set(v, vi, lbn,
					   addr >> VMFS_MD_BLOCK_SHIFT, true);
	}
	free(idx);
	return ret;
}

/*
 * Write into the file's current map.  Every block of the range is
 * allocated and mapped before any byte is written, so running out of
 * space changes no data; the caller's undo takes the mapping back.
 */
static int write_in_map(struct vol *v, struct vinode *vi, const void *buf,
			size_t len, uint64_t off)
{
	const uint8_t *in = buf;
	uint64_t end = off + len, bs;
	size_t done = 0;
	int ret;

	if (vi->map_type == VMFS_MAP_INLINE) {
		memcpy(inline_data(vi) + off, buf, len);
	} else {
		bs = bmap_bsize(v, vi);
		ret = map_written(v, vi, off, end);
		if (!ret)
			ret = vol_bmap_flush(v, vi);
		while (!ret && done < len) {
			uint64_t boff = (off + done) % bs, n = bs - boff, p;

			if (n > len - done)
				n = len - done;
			ret = vol_bmap_get(v, vi, (off + done) / bs, &p);
			if (!ret)
				ret = dev_write(v, vmfs_ptr_addr(p) + boff, in + done, n);
			done += n;
		}
		if (ret)
			return ret;
	}
	if (end > vi->size)
		vi->size = end;
	vol_inode_touch(vi, true, true);
	ret = vol_inode_write(v, vi);
	return ret ? ret : (int)len;
}

/*
 * Whether the small-block area can take a regular file growing to end
 * bytes.  Its last 1/16 is kept for directories and long symlinks, which
 * cannot live anywhere else: regular files, which can, go to file blocks
 * first, so many small files do not stop every directory from growing.
 */
static bool small_room(struct vol *v, struct vinode *vi, uint64_t end)
{
	uint64_t sbs = v->g.small_block_size, need = (end + sbs - 1) / sbs;
	uint64_t have = vi->map_type == VMFS_MAP_SMALL ? vi->alloc_bytes / sbs : 0;
	uint64_t reserve = v->g.res[VMFS_RES_SMALL].count / 16;

	return need <= have ||
	       vol_res_avail(v, VMFS_RES_SMALL) >= need - have + reserve;
}

static int file_set_map(struct vol *v, struct vinode *vi, uint16_t map_type);

/*
 * Give the file the map type a size of end bytes needs: inline while it
 * fits, then small blocks up to small_max(), then file blocks.  A
 * regular file goes to file blocks early when the small-block area
 * cannot hold it: it works the same there, and fsck accepts any map type
 * for a regular file, so a full small-block area never stops small files
 * while file blocks are free.
 */
static int file_map_fit(struct vol *v, struct vinode *vi, uint64_t end)
{
	uint16_t want = vi->map_type;

	if (want == VMFS_MAP_INLINE && end > VMFS_INLINE_MAX)
		want = VMFS_MAP_SMALL;
	if (want == VMFS_MAP_SMALL && S_ISREG(vi->mode) &&
	    (end > small_max(v) || !small_room(v, vi, end)))
		want = VMFS_MAP_FILE;
	return file_set_map(v, vi, want);
}

/*
 * Write under the inode's write lock: allocates, zeroes, extends, converts
 * the map type as needed, and writes the inode.  All or nothing: on any
 * error the file is as before (undo.c), except bytes of blocks it already
 * had that the LUN failed to take.  Those past the old EOF (in its last
 * block, or in blocks reserved past it) are zeroed again, so the file
 * reads as before and a later extension shows zeros; ENOSPC comes before
 * any data is written and needs none of that.
 */
int vol_file_write_locked(struct vol *v, struct vinode *vi, const void *buf,
		      size_t len, uint64_t off)
{
	uint64_t end = off + len, old_size = vi->size;
	struct vundo u;
	int ret;

	if (end < off || end / v->g.file_block_size >= vol_bmap_max_blocks())
		return -EFBIG;
	vol_undo_begin(vi, &u);
	ret = file_map_fit(v, vi, end);
	if (!ret)
		ret = write_in_map(v, vi, buf, len, off);
	ret = vol_undo_end(v, vi, &u, ret);
	if (ret < 0 && ret != -ENOSPC && u.owner && end > old_size &&
	    vi->map_type != VMFS_MAP_INLINE) {
		uint64_t from = off > old_size ? off : old_size;

		zero_in_file(v, vi, from, end - from);
	}
	return ret;
}

/*
 * Move a file to another map type, keeping its data: inline -> small or
 * file blocks, small -> file blocks.  A small-block file is never larger
 * than small_max(), so its blocks are all direct pointers: those are
 * remembered, the data is written through the new map (inode written
 * with it), and the old blocks are freed when the running operation
 * succeeds (undo.c): if it fails, the old map comes back whole.
 */
static int file_set_map(struct vol *v, struct vinode *vi, uint16_t map_type)
{
	struct vmfs_inode *di = (struct vmfs_inode *)(vi->blk + VMFS_OBJ_OFFSET);
	uint64_t size = vi->size, old[VMFS_NDIRECT];
	uint32_t nold = 0, old_bs = bmap_bsize(v, vi);
	uint16_t old_type = vi->map_type;
	uint8_t *data = NULL;
	int ret = 0;

	if (map_type == old_type)
		return 0;
	if (size) {
		data = lun_buf_alloc(size);
		if (!data)
			return -ENOMEM;
		ret = vol_file_read_locked(v, vi, data, size, 0);
		if (ret < 0)
			goto out;
	}
	if (old_type == VMFS_MAP_SMALL) {
		for (uint32_t i = 0; i < VMFS_NDIRECT; i++) {
			uint64_t p = fmt_ptr_load(&di->di_map[i]);
			int64_t idx = p ? vol_res_index(v, VMFS_RES_SMALL, vmfs_ptr_addr(p)) : -1;

			if (idx >= 0) {
				old[nold++] = (uint64_t)idx;
				vi->alloc_bytes -= old_bs;
			}
		}
	}
	/* Shared: the old blocks' clusters before the new blocks' (small
	 * blocks before file blocks, docs/PROTOCOL.md §3); refused, the
	 * caller's undo puts the inode back. */
	for (uint32_t i = 0; i < nold; i++) {
		ret = vol_res_lock_of(v, VMFS_RES_SMALL, old[i]);
		if (ret)
			goto out;
	}
	memset(di->di_map, 0, sizeof(di->di_map));
	vi->map_type = map_type;
	vi->size = 0;
	ret = size ? write_in_map(v, vi, data, size, 0) : vol_inode_write(v, vi);
	if (ret >= 0)
		ret = vol_undo_free_later(v, vi, VMFS_RES_SMALL, old, nold);
out:
	lun_buf_free(data);
	return ret < 0 ? ret : 0;
}

/* A bigger size: only the map type may change, no data block is added. */
static int truncate_up(struct vol *v, struct vinode *vi, uint64_t size)
{
	struct vundo u;
	int ret;

	vol_undo_begin(vi, &u);
	ret = file_map_fit(v, vi, size);
	if (!ret) {
		vi->size = size;
		vol_inode_touch(vi, true, true);
		ret = vol_inode_write(v, vi);
	}
	return vol_undo_end(v, vi, &u, ret);
}

int vol_file_truncate(struct vol *v, struct vinode *vi, uint64_t size)
{
	uint64_t bs;
	int ret = 0;

	if (size / v->g.file_block_size >= vol_bmap_max_blocks())
		return -EFBIG;
	if (size > vi->size)
		return truncate_up(v, vi, size);
	if (vi->map_type == VMFS_MAP_INLINE) {
		memset(inline_data(vi) + size, 0, VMFS_INLINE_MAX - size);
	} else if (size < vi->size) {
		uint64_t first_gone;

		bs = bmap_bsize(v, vi);
		first_gone = (size + bs - 1) / bs;
		ret = vol_bmap_free_range(v, vi, first_gone, UINT64_MAX);
		if (!ret && size % bs) {
			uint64_t p;

			ret = vol_bmap_get(v, vi, size / bs, &p);
			if (!ret && p && !(p & VMFS_PTR_TBZ))
				ret = dev_zero(v, vmfs_ptr_addr(p) + size % bs,
					       bs - size % bs);
		}
		if (ret)
			return ret;
	}
	vi->size = size;
	vol_inode_touch(vi, true, true);
	return vol_inode_write(v, vi);
}

/*
 * Map every hole of blocks [first, last] as TBZ (alloc_holes), the
 * pointer blocks and inode written every 512 blocks.
 */
static int alloc_range(struct vol *v, struct vinode *vi, uint64_t first,
		       uint64_t last)
{
	enum vmfs_res_type t = bmap_res(vi);
	uint64_t *idx, n, k = 0;
	int ret;

	ret = alloc_holes(v, vi, first, last, &idx, &n);
	for (uint64_t lbn = first; !ret && k < n && lbn <= last; lbn++) {
		uint64_t p;

		ret = vol_bmap_get(v, vi, lbn, &p);
		if (ret || p)
			continue;
		ret = vol_bmap_set(v, vi, lbn,
				   (res_addr(v, t, idx[k++]) >> VMFS_MD_BLOCK_SHIFT) |
				   VMFS_PTR_TBZ, true);
		if (!ret && (k % 512 == 0 || k == n)) {
			ret = vol_bmap_flush(v, vi);
			if (!ret)
				ret = vol_inode_write(v, vi);
		}
	}
	free(idx);
	return ret;
}

/* Physically zero whole blocks [first, last] and clear their TBZ flag. */
static int eager_zero(struct vol *v, struct vinode *vi, uint64_t first,
		      uint64_t last)
{
	uint64_t bs = bmap_bsize(v, vi);
	bool changed = false;
	int ret = 0;

	for (uint64_t lbn = first; lbn <= last && !ret; lbn++) {
		uint64_t p;

		ret = vol_bmap_get(v, vi, lbn, &p);
		if (ret || !p)
			break;
		ret = lun_zero_range(v->lun, vmfs_ptr_addr(p), bs);
		if (!ret && (p & VMFS_PTR_TBZ)) {
			ret = vol_bmap_set(v, vi, lbn, p & ~VMFS_PTR_TBZ, true);
			changed = true;
		}
	}
	if (changed) {
		int err = vol_bmap_flush(v, vi);

		if (!err)
			err = vol_inode_write(v, vi);
		if (!ret)
			ret = err;
	}
	return ret;
}

static int fallocate_once(struct vol *v, uint64_t ino, int mode,
			  uint64_t off, uint64_t len)
{
	VOL_HANDLE(v);
	const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
			  FALLOC_FL_ZERO_RANGE;
	uint64_t end = off + len, bs, first, last;
	struct vinode *vi;
	struct vundo u;
	int ret;

	if (mode & ~known)
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) &&
	    (!(mode & FALLOC_FL_KEEP_SIZE) || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EINVAL;
	if (!len || end < off)
		return -EINVAL;
	if (end / v->g.file_block_size >= vol_bmap_max_blocks())
		return -EFBIG;
	if (vol_is_rdonly(v))
		return -EROFS;
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_wrlock(&vi->rw);
	if (S_ISDIR(vi->mode)) {
		ret = -EISDIR;
		goto out;
	}
	if (!S_ISREG(vi->mode)) {
		ret = -ENODEV;
		goto out;
	}

	if (mode & FALLOC_FL_PUNCH_HOLE) {
		if (off >= vi->size)
			goto out;
		if (end > vi->size)
			end = vi->size;
		if (vi->map_type == VMFS_MAP_INLINE) {
			memset(inline_data(vi) + off, 0, end - off);
			vol_inode_touch(vi, true, true);
			ret = vol_inode_write(v, vi);
			goto out;
		}
		bs = bmap_bsize(v, vi);
		first = (off + bs - 1) / bs;
		last = end / bs; /* exclusive */
		if (first < last) {
			ret = vol_bmap_free_range(v, vi, first, last - 1);
			if (!ret && off < first * bs)
				ret = zero_in_file(v, vi, off, first * bs - off);
			if (!ret && end > last * bs)
				ret = zero_in_file(v, vi, last * bs, end - last * bs);
		} else {
			ret = zero_in_file(v, vi, off, end - off);
		}
		if (!ret) {
			vol_inode_touch(vi, true, true);
			ret = vol_inode_write(v, vi);
		}
		goto out;
	}

	/*
	 * Allocation (plain or zeroing), all or nothing (undo.c): pick the
	 * map the new size needs, then fill the holes.
	 */
	vol_undo_begin(vi, &u);
	ret = file_map_fit(v, vi, end > vi->size ? end : vi->size);
	if (!ret && vi->map_type == VMFS_MAP_INLINE) {
		/* Inline data is always allocated; zero what was asked. */
		if (mode & FALLOC_FL_ZERO_RANGE)
			memset(inline_data(vi) + off, 0, len);
	} else if (!ret) {
		bs = bmap_bsize(v, vi);
		ret = alloc_range(v, vi, off / bs, (end - 1) / bs);
		if (!ret && (mode & FALLOC_FL_ZERO_RANGE)) {
			first = (off + bs - 1) / bs;
			last = end / bs;
			if (first < last)
				ret = eager_zero(v, vi, first, last - 1);
			if (!ret && off < first * bs)
				ret = zero_in_file(v, vi, off,
						   (first * bs < end ? first * bs : end) - off);
			if (!ret && end > last * bs && last >= first)
				ret = zero_in_file(v, vi, last * bs, end - last * bs);
		}
	}
	if (!ret) {
		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > vi->size)
			vi->size = end;
		vol_inode_touch(vi, false, true);
		ret = vol_inode_write(v, vi);
	}
	ret = vol_undo_end(v, vi, &u, ret);
out:
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

int vol_fallocate(struct vol *v, uint64_t ino, int mode, uint64_t off,
		  uint64_t len)
{
	VCL_OP(v);
	int ret = vcl_may_write(v, ino);

	if (!ret)
		ret = vcl_lock_ino(v, ino, VMFS_LOCK_EXCLUSIVE);
	if (!ret)
		ret = VOL_RETRY_NOSPC(v, fallocate_once(v, ino, mode, off, len));
	return VCL_END(v, ret);
}

ssize_t vol_read(struct vol *v, uint64_t ino, void *buf, size_t len,
		 uint64_t off)
{
	struct vinode *vi;
	int ret = vol_fenced(v);

	if (ret)
		return ret;
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&vi->rw);
	if (S_ISDIR(vi->mode))
		ret = -EISDIR;
	else
		ret = vol_file_read_locked(v, vi, buf, len, off);
	pthread_rwlock_unlock(&vi->rw);
	vol_inode_put(v, vi);
	return ret;
}

/*
 * The fast path: a sector-aligned write inside EOF onto blocks that are
 * already written needs no metadata change, so it runs under the read
 * lock and many such writes (a VM's I/O queue) proceed in parallel.
 * Returns 1 when the slow path must do it.
 */
static int write_fast(struct vol *v, struct vinode *vi, const void *buf,
		      size_t len, uint64_t off)
{
	uint64_t bs = bmap_bsize(v, vi);
	const uint8_t *in = buf;
	size_t done = 0;

	if (vi->map_type == VMFS_MAP_INLINE || off + len > vi->size ||
	    ((off | len) & (v->ss - 1)))
		return 1;
	while (done < len) {
		uint64_t lbn = (off + done) / bs, boff = (off + done) % bs;
		uint64_t n = bs - boff, p;
		int ret;

		if (n > len - done)
			n = len - done;
		ret = vol_bmap_get(v, vi, lbn, &p);
		if (ret)
			return ret;
		if (!p || (p & VMFS_PTR_TBZ))
			return 1;
		ret = dev_write(v, vmfs_ptr_addr(p) + boff, in + done, n);
		if (ret)
			return ret;
		done += n;
	}
	pthread_mutex_lock(&vi->lk);
	vol_inode_touch(vi, true, true);
	pthread_mutex_unlock(&vi->lk);
	return 0;
}

/* The slow path: under the write lock, in a journal handle. */
static int write_slow(struct vol *v, struct vinode *vi, const void *buf,
		      size_t len, uint64_t off)
{
	VOL_HANDLE(v);
	int ret;

	pthread_rwlock_wrlock(&vi->rw);
	ret = vol_file_write_locked(v, vi, buf, len, off);
	pthread_rwlock_unlock(&vi->rw);
	return ret;
}

ssize_t vol_write(struct vol *v, uint64_t ino, const void *buf, size_t len,
		  uint64_t off)
{
	struct vinode *vi;
	int ret = vol_fenced(v);

	if (ret)
		return ret;
	if (vol_is_rdonly(v))
		return -EROFS;
	if (!len)
		return 0;
	ret = vcl_may_write(v, ino);
	if (ret)
		return ret;
	ret = vol_inode_get(v, ino, &vi);
	if (ret)
		return ret;
	if (!S_ISREG(vi->mode)) {
		ret = S_ISDIR(vi->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	pthread_rwlock_rdlock(&vi->rw);
	ret = write_fast(v, vi, buf, len, off);
	pthread_rwlock_unlock(&vi->rw);
	if (ret == 0) {
		ret = (int)len;
		goto out;
	}
	if (ret < 0)
		goto out;
	/* Hosts share a multi-writer file's lock: a write that would change
	 * its metadata (allocate, zero, move EOF) cannot be made safely. */
	if (vcl_shared(v) && (vi->flags & VMFS_DI_MULTIWRITER)) {
		ret = -EPERM;
		goto out;
	}
	/* Blocks to allocate or zero, EOF to move, or a partial sector. */
	{
		VCL_OP(v);

		ret = vcl_lock_ino(v, ino, VMFS_LOCK_EXCLUSIVE);
		if (!ret)
			ret = VOL_RETRY_NOSPC(v, write_slow(v, vi, buf, len,
							     off));
		ret = VCL_END(v, ret);
	}
out:
	vol_inode_put(v, vi);
	return ret;
}

/*
 * The file's data and everything needed to reach it durable: its
 * timestamps join the running transaction, which is committed (the
 * commit flushes the data first).  Commits are shared, so an fsync also
 * makes every earlier change of every file durable.
 */
int vol_fsync(struct vol *v, uint64_t ino, bool datasync)
{
	struct vinode *vi;
	int ret = vol_fenced(v);

	if (ret)
		return ret;
	/* Shared: every operation is home when it ends, and the open lock
	 * covers the timestamps (vol_release_file writes them). */
	if (vcl_shared(v) && !vcl_holds_ino(v, ino))
		return vol_sync(v);
	{
		/* An operation: the timestamps go home with it while the
		 * lock may be held as a cache (vcl_adopt_ino). */
		VCL_OP(v);

		vcl_adopt_ino(v, ino);
		ret = vol_inode_get(v, ino, &vi);
		if (!ret) {
			VOL_HANDLE(v);

			pthread_rwlock_wrlock(&vi->rw);
			ret = datasync ? 0 : vol_inode_flush_times(v, vi);
			pthread_rwlock_unlock(&vi->rw);
			vol_inode_put(v, vi);
		}
		ret = VCL_END(v, ret);
	}
	if (!ret)
		ret = vol_sync(v);
	return ret;
}
