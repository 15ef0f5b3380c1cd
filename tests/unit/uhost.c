/*
 * Hosts of a shared volume inside one test process (uhost.h).
 */
#include <stdio.h>
#include <string.h>
#include "unit.h"
#include "uhost.h"

#define MIB (1024ull * 1024)

const char *uhost_lun_path;
struct vol_geom uhost_geom;
unsigned uhost_lease_ms = UHOST_LEASE_MS_DEFAULT;
bool uhost_disk_asks;

void uhost_up(struct uhost *h, unsigned n, bool faulty)
{
	struct vol_cluster_opts co;
	struct vol_open_opts oo;
	struct hb_opts o;
	uint8_t uuid[VMFS_UUID_SIZE];
	char name[8];

	memset(uuid, 0, sizeof(uuid));
	uuid[0] = 0xa0 + (uint8_t)n;
	uuid[15] = 1;
	snprintf(name, sizeof(name), "u%u", n);
	CU_ASSERT_FATAL(lun_open(uhost_lun_path, 0, &h->lun) == 0);
	if (faulty) {
		struct lun *inner = h->lun;

		CU_ASSERT_FATAL(lun_fault_wrap(inner, &h->lun) == 0);
	}
	CU_ASSERT_FATAL(lun_open(uhost_lun_path, 0, &h->hb_lun) == 0);
	memset(&o, 0, sizeof(o));
	o.host_uuid = uuid;
	o.hostname = name;
	o.lease_ms = uhost_lease_ms;
	o.journal_offset = uhost_geom.journal_offset;
	o.journal_size = uhost_geom.journal_size_bytes;
	o.gate_lun = h->lun;
	o.asks = uhost_disk_asks;
	CU_ASSERT_FATAL(hb_join(h->hb_lun, uhost_geom.hb_offset, &o, &h->hb) == 0);
	memset(&oo, 0, sizeof(oo));
	oo.flags = VOL_OWN_JOURNAL;
	oo.journal_slot = hb_slot_index(h->hb);
	CU_ASSERT_FATAL(vol_open_ex(h->lun, &oo, &h->v) == 0);
	memset(&co, 0, sizeof(co));
	co.hb_lun = h->hb_lun;
	co.lock_lun = h->lun;
	co.hb_offset = uhost_geom.hb_offset;
	co.host_uuid = uuid;
	co.my_slot = hb_slot_index(h->hb);
	co.my_hb_gen = hb_generation(h->hb);
	co.prim = hb_primitive(h->hb);
	hb_timeouts_get(h->hb, &co.t);
	if (uhost_disk_asks)
		co.hb = h->hb;
	CU_ASSERT_FATAL(vol_cluster_start(h->v, &co) == 0);
}

int uhost_down(struct uhost *h)
{
	int ret = 0, r;

	if (h->v) {
		vol_cluster_stop(h->v);
		ret = vol_close(h->v);
	}
	if (h->hb && (r = hb_leave(h->hb)) && !ret)
		ret = r;
	if (h->lun)
		lun_close(h->lun);
	if (h->hb_lun)
		lun_close(h->hb_lun);
	memset(h, 0, sizeof(*h));
	return ret;
}

void uhost_volume_sized(const char *stem, uint64_t size)
{
	struct lun *lun;

	uhost_lun_path = unit_scratch_volume(stem, size, &lun);
	CU_ASSERT_FATAL(vol_geom_read(lun, &uhost_geom, NULL, NULL) == 0);
	lun_close(lun);
}

void uhost_volume(const char *stem)
{
	uhost_volume_sized(stem, 256 * MIB);
}
