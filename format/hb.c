/*
 * Heartbeat region header and heartbeat slots.  A slot is renewed by a
 * one-sector compare-and-write of exactly these bytes, so encode(decode(x))
 * must give x back for every slot a host wrote: strings are NUL-padded to
 * the end of their field (a name may fill it), nothing else is touched.
 */
#include <endian.h>
#include <string.h>

#include "vmfs/error.h"
#include "vmfs/format.h"

int fmt_hb_region_decode(const struct vmfs_hb_region *d,
			 struct fmt_hb_region *hr)
{
	hr->gen = le64toh(d->hr_hdr.bh_gen);
	hr->nslots = le32toh(d->hr_nslots);
	hr->lease_ms = le32toh(d->hr_lease_ms);
	hr->renew_ms = le32toh(d->hr_renew_ms);
	hr->slot0_offset = le64toh(d->hr_slot0_offset);
	if (!hr->nslots || !hr->lease_ms || !hr->renew_ms)
		return -VMFS_E_CORRUPT;
	return 0;
}

void fmt_hb_region_encode(const struct fmt_hb_region *hr,
			  struct vmfs_hb_region *d)
{
	d->hr_hdr.bh_gen = htole64(hr->gen);
	d->hr_nslots = htole32(hr->nslots);
	d->hr_lease_ms = htole32(hr->lease_ms);
	d->hr_renew_ms = htole32(hr->renew_ms);
	d->hr_slot0_offset = htole64(hr->slot0_offset);
}

/* A NUL-padded field of n bytes into a C string of n + 1, and back. */
static void str_decode(char *out, const char *field, size_t n)
{
	memcpy(out, field, n);
	out[n] = 0;
}

static void str_encode(char *field, const char *in, size_t n)
{
	memset(field, 0, n);
	memcpy(field, in, strnlen(in, n));
}

int fmt_hb_slot_decode(const struct vmfs_hb_slot *d, struct fmt_hb_slot *hs)
{
	hs->gen = le64toh(d->hs_hdr.bh_gen);
	hs->state = le32toh(d->hs_state);
	hs->slot = le32toh(d->hs_slot);
	hs->hb_gen = le64toh(d->hs_hb_gen);
	hs->counter = le64toh(d->hs_counter);
	hs->lease_ms = le32toh(d->hs_lease_ms);
	hs->renew_ms = le32toh(d->hs_renew_ms);
	memcpy(hs->host_uuid, d->hs_host_uuid, VMFS_UUID_SIZE);
	hs->journal_offset = le64toh(d->hs_journal_offset);
	hs->journal_size = le64toh(d->hs_journal_size);
	str_decode(hs->addr, d->hs_addr, sizeof(d->hs_addr));
	str_decode(hs->hostname, d->hs_hostname, sizeof(d->hs_hostname));
	hs->vm_free_mib = le64toh(d->hs_vm_free_mib);
	hs->flags = le32toh(d->hs_flags);
	hs->want_seq = le32toh(d->hs_want_seq);
	hs->want_addr = le64toh(d->hs_want_addr);
	hs->busy_slot = le32toh(d->hs_busy_slot);
	hs->busy_seq = le32toh(d->hs_busy_seq);
	hs->busy_addr = le64toh(d->hs_busy_addr);
	return hs->state > VMFS_HB_REPLAYING ? -VMFS_E_CORRUPT : 0;
}

void fmt_hb_slot_encode(const struct fmt_hb_slot *hs, struct vmfs_hb_slot *d)
{
	d->hs_hdr.bh_gen = htole64(hs->gen);
	d->hs_state = htole32(hs->state);
	d->hs_slot = htole32(hs->slot);
	d->hs_hb_gen = htole64(hs->hb_gen);
	d->hs_counter = htole64(hs->counter);
	d->hs_lease_ms = htole32(hs->lease_ms);
	d->hs_renew_ms = htole32(hs->renew_ms);
	memcpy(d->hs_host_uuid, hs->host_uuid, VMFS_UUID_SIZE);
	d->hs_journal_offset = htole64(hs->journal_offset);
	d->hs_journal_size = htole64(hs->journal_size);
	str_encode(d->hs_addr, hs->addr, sizeof(d->hs_addr));
	str_encode(d->hs_hostname, hs->hostname, sizeof(d->hs_hostname));
	d->hs_vm_free_mib = htole64(hs->vm_free_mib);
	d->hs_flags = htole32(hs->flags);
	d->hs_want_seq = htole32(hs->want_seq);
	d->hs_want_addr = htole64(hs->want_addr);
	d->hs_busy_slot = htole32(hs->busy_slot);
	d->hs_busy_seq = htole32(hs->busy_seq);
	d->hs_busy_addr = htole64(hs->busy_addr);
}
