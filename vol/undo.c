/*
 * All-or-nothing growth of a file.
 *
 * A write, fallocate or truncate that makes a file bigger changes several
 * things one after the other: the map type (inline -> small blocks ->
 * file blocks), new data and pointer blocks, pointers in existing
 * pointer blocks, the size.  Any step can fail (ENOSPC from the
 * allocator, EIO from the LUN); the file must then be exactly as before
 * the call, and everything allocated on the way must be free again.
 *
 * The journal cannot roll back part of a running transaction, but every
 * metadata block is logged as a whole image and the last image of a
 * block wins.  So the operation remembers the first image of each block
 * it changes (the inode, pointer blocks) and each object it allocates;
 * on failure it writes the old images again and frees the objects, all
 * inside the same handle.  The transaction then commits the old state
 * (plus bitmap images equal to the old ones) and no half-done state
 * ever reaches the disk.  Data blocks are only ever new ones, so no data
 * the file could read before is touched by the undo.
 *
 * An operation begun while another runs on the same inode (vi->undo set)
 * joins it: only the outermost one undoes or frees.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vol_int.h"

void vol_undo_begin(struct vinode *vi, struct vundo *u)
{
	u->owner = !vi->undo;
	if (!u->owner)
		return;
	memcpy(u->img, vi->blk, VMFS_MD_BLOCK_SIZE);
	u->size = vi->size;
	u->alloc_bytes = vi->alloc_bytes;
	u->mtime_ns = vi->mtime_ns;
	u->ctime_ns = vi->ctime_ns;
	u->map_type = vi->map_type;
	u->allocs = u->frees = NULL;
	u->nallocs = u->nfrees = u->cap_allocs = u->cap_frees = 0;
	u->pbs = NULL;
	u->npbs = u->cap_pbs = 0;
	vi->undo = u;
}

/* Room for n more elements of size sz in *arr (capacity *cap, used n0). */
static int grow(void *arr, uint32_t *cap, uint32_t n0, uint32_t n, size_t sz)
{
	void **pa = arr;
	uint32_t nc = *cap ? *cap : 32;
	void *na;

	if (n0 + n <= *cap)
		return 0;
	while (nc < n0 + n)
		nc *= 2;
	na = realloc(*pa, (size_t)nc * sz);
	if (!na)
		return -ENOMEM;
	*pa = na;
	*cap = nc;
	return 0;
}

static int note_objs(struct vobj **arr, uint32_t *n, uint32_t *cap,
		     enum vmfs_res_type t, const uint64_t *idx, uint32_t cnt)
{
	int ret = grow(arr, cap, *n, cnt, sizeof(**arr));

	if (ret)
		return ret;
	for (uint32_t i = 0; i < cnt; i++) {
		(*arr)[*n].t = t;
		(*arr)[(*n)++].idx = idx[i];
	}
	return 0;
}

/*
 * Objects just allocated for vi; a failure of the operation frees them.
 * On -ENOMEM the caller still owns them (and must free them itself).
 */
int vol_undo_note_alloc(struct vinode *vi, enum vmfs_res_type t,
		    const uint64_t *idx, uint32_t n)
{
	struct vundo *u = vi->undo;

	if (!u)
		return 0;
	return note_objs(&u->allocs, &u->nallocs, &u->cap_allocs, t, idx, n);
}

/*
 * The pointer block pb is about to change: keep its image the first time
 * (pb->in_undo says it is kept), or mark it as new in this operation.
 */
int vol_undo_note_pb(struct vinode *vi, struct pblk *pb, bool is_new)
{
	struct vundo *u = vi->undo;
	uint8_t *img = NULL;
	int ret;

	if (!u || pb->in_undo)
		return 0;
	ret = grow(&u->pbs, &u->cap_pbs, u->npbs, 1, sizeof(*u->pbs));
	if (ret)
		return ret;
	if (!is_new) {
		img = malloc(VMFS_MD_BLOCK_SIZE);
		if (!img)
			return -ENOMEM;
		memcpy(img, pb->blk, VMFS_MD_BLOCK_SIZE);
	}
	u->pbs[u->npbs].addr = pb->addr;
	u->pbs[u->npbs++].img = img;
	pb->in_undo = true;
	return 0;
}

/* Objects vi stops using: freed when the operation succeeds (now if none runs). */
int vol_undo_free_later(struct vol *v, struct vinode *vi, enum vmfs_res_type t,
		    const uint64_t *idx, uint32_t n)
{
	struct vundo *u = vi->undo;

	if (!u)
		return vol_res_free(v, t, idx, n);
	return note_objs(&u->frees, &u->nfrees, &u->cap_frees, t, idx, n);
}

/* Free the listed objects, one vol_res_free per area. */
static int free_objs(struct vol *v, const struct vobj *o, uint32_t n)
{
	uint64_t *idx;
	int ret = 0;

	if (!n)
		return 0;
	idx = malloc(n * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (int t = 0; t < VMFS_RES_NTYPES; t++) {
		uint32_t k = 0;

		for (uint32_t i = 0; i < n; i++)
			if (o[i].t == (enum vmfs_res_type)t)
				idx[k++] = o[i].idx;
		if (k) {
			int err = vol_res_free(v, (enum vmfs_res_type)t, idx, k);

			if (!ret)
				ret = err;
		}
	}
	free(idx);
	return ret;
}

/* Put vi back as vol_undo_begin saw it and free what the operation allocated. */
static int undo_rollback(struct vol *v, struct vinode *vi, struct vundo *u)
{
	int ret = 0, err;

	/* Old pointers first, then the objects they no longer reach. */
	for (uint32_t i = 0; i < u->npbs; i++) {
		err = vol_bmap_pb_release(v, vi, u->pbs[i].addr, u->pbs[i].img, true);
		if (err && !ret)
			ret = err;
	}
	memcpy(vi->blk + VMFS_OBJ_OFFSET, u->img + VMFS_OBJ_OFFSET,
	       VMFS_MD_BLOCK_SIZE - VMFS_OBJ_OFFSET);
	vi->size = u->size;
	vi->alloc_bytes = u->alloc_bytes;
	vi->mtime_ns = u->mtime_ns;
	vi->ctime_ns = u->ctime_ns;
	vi->map_type = u->map_type;
	err = vol_inode_write(v, vi);
	if (err && !ret)
		ret = err;
	err = free_objs(v, u->allocs, u->nallocs);
	if (err && !ret)
		ret = err;
	return ret;
}

/*
 * End the operation with result ret: on success free what it stopped
 * using; on failure (ret < 0) undo it.  Returns ret.
 */
int vol_undo_end(struct vol *v, struct vinode *vi, struct vundo *u, int ret)
{
	int err;

	if (!u->owner)
		return ret;
	vi->undo = NULL;
	if (ret < 0) {
		err = undo_rollback(v, vi, u);
		if (err)
			VLOG(LOG_ERR, "inode %llu: undoing a failed change (%s) failed too: %s; run 'vmfs fsck'",
			     (unsigned long long)vi->ino, vmfs_strerror(ret),
			     vmfs_strerror(err));
	} else {
		/* Done and pointing elsewhere: a failure here only leaks. */
		err = free_objs(v, u->frees, u->nfrees);
		if (err)
			VLOG(LOG_WARNING, "inode %llu: old blocks not freed: %s; 'vmfs fsck' frees them",
			     (unsigned long long)vi->ino, vmfs_strerror(err));
	}
	for (uint32_t i = 0; i < u->npbs; i++) {
		if (ret >= 0)
			vol_bmap_pb_release(v, vi, u->pbs[i].addr, NULL, false);
		free(u->pbs[i].img);
	}
	free(u->pbs);
	free(u->allocs);
	free(u->frees);
	return ret;
}
