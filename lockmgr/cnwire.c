/*
 * The fast path's message codec (cn_int.h has the layout).  Decoding
 * checks, in this order, each with its own reason: the header fits, the
 * magic, the version (older than 1 is malformed, newer is refused on its
 * own so the log can say "upgrade"), the length field against the bytes
 * received, the crc, the type, and the body's exact size and contents.
 * Only then is anything copied out.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "vmfs/lun.h"
#include "cn_int.h"

static size_t cn_body_size(unsigned type)
{
	switch (type) {
	case CN_MSG_HELLO:
		return sizeof(struct cn_wire_hello);
	case CN_MSG_ASK:
		return sizeof(struct cn_wire_ask);
	case CN_MSG_RELEASED:
		return sizeof(struct cn_wire_released);
	case CN_MSG_BUSY:
		return sizeof(struct cn_wire_busy);
	case CN_MSG_APP:
		return sizeof(struct cn_wire_app);
	default:
		return 0;
	}
}

const char *cn_msg_type_name(unsigned type)
{
	static const char *const names[] = {
		[CN_MSG_HELLO] = "hello", [CN_MSG_ASK] = "ask",
		[CN_MSG_RELEASED] = "released", [CN_MSG_BUSY] = "busy",
		[CN_MSG_APP] = "app",
	};

	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	return "unknown";
}

/* Host names as the heartbeat slot holds them: printable, no spaces. */
static bool cn_name_ok(const char *s, size_t n)
{
	if (n > CN_HOST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static uint32_t cn_crc(const uint8_t *buf, size_t len)
{
	static const uint8_t zero[4];
	size_t at = offsetof(struct cn_wire_hdr, ch_crc);
	uint32_t crc;

	crc = lun_crc32c(0, buf, at);
	crc = lun_crc32c(crc, zero, sizeof(zero));
	return lun_crc32c(crc, buf + at + 4, len - at - 4);
}

void cn_msg_seal(void *buf, size_t len)
{
	struct cn_wire_hdr h;

	memcpy(&h, buf, sizeof(h));
	h.ch_length = htole32((uint32_t)len);
	h.ch_crc = 0;
	memcpy(buf, &h, sizeof(h));
	h.ch_crc = htole32(cn_crc(buf, len));
	memcpy(buf, &h, sizeof(h));
}

ssize_t cn_msg_encode(const struct cn_msg *m, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t body = cn_body_size(m->type), name_len = 0, total;
	struct cn_wire_hdr h;

	if (!body)
		return -EINVAL;
	if (m->type == CN_MSG_HELLO) {
		name_len = strnlen(m->u.hello.name, sizeof(m->u.hello.name));
		if (!cn_name_ok(m->u.hello.name, name_len))
			return -EINVAL;
	}
	if (m->type == CN_MSG_APP) {
		if (m->u.app.len > CN_APP_MAX)
			return -EINVAL;
		name_len = m->u.app.len;   /* the bytes after the body */
	}
	total = sizeof(h) + body + name_len;
	if (total > len)
		return -E2BIG;
	memset(buf, 0, total);
	h.ch_magic = htole32(CN_MAGIC);
	h.ch_version = htole16(CN_PROTO_VERSION);
	h.ch_type = htole16((uint16_t)m->type);
	h.ch_length = 0;
	h.ch_crc = 0;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);

	switch (m->type) {
	case CN_MSG_HELLO: {
		struct cn_wire_hello w = { 0 };

		memcpy(w.hw_host_uuid, m->u.hello.host_uuid, VMFS_UUID_SIZE);
		w.hw_slot = htole32(m->u.hello.slot);
		w.hw_name_len = htole16((uint16_t)name_len);
		w.hw_hb_gen = htole64(m->u.hello.hb_gen);
		memcpy(p, &w, sizeof(w));
		memcpy(p + sizeof(w), m->u.hello.name, name_len);
		break;
	}
	case CN_MSG_ASK: {
		struct cn_wire_ask w = { 0 };

		w.aw_req_id = htole64(m->u.ask.req_id);
		w.aw_addr = htole64(m->u.ask.addr);
		w.aw_mode = htole32(m->u.ask.mode);
		w.aw_target_slot = htole32(m->u.ask.target.slot);
		w.aw_target_hb_gen = htole64(m->u.ask.target.hb_gen);
		memcpy(w.aw_target_uuid, m->u.ask.target.uuid, VMFS_UUID_SIZE);
		memcpy(p, &w, sizeof(w));
		break;
	}
	case CN_MSG_RELEASED: {
		struct cn_wire_released w = { htole64(m->u.released.addr) };

		memcpy(p, &w, sizeof(w));
		break;
	}
	case CN_MSG_BUSY: {
		struct cn_wire_busy w;

		w.bw_nodeid = htole32(m->u.busy.nodeid);
		w.bw_pid = htole32(m->u.busy.pid);
		w.bw_req_id = htole64(m->u.busy.req_id);
		w.bw_addr = htole64(m->u.busy.addr);
		memcpy(p, &w, sizeof(w));
		break;
	}
	case CN_MSG_APP: {
		struct cn_wire_app w = { 0 };

		w.pw_target_hb_gen = htole64(m->u.app.target.hb_gen);
		w.pw_target_slot = htole32(m->u.app.target.slot);
		w.pw_data_len = htole32(m->u.app.len);
		memcpy(w.pw_target_uuid, m->u.app.target.uuid, VMFS_UUID_SIZE);
		memcpy(p, &w, sizeof(w));
		memcpy(p + sizeof(w), m->u.app.data, m->u.app.len);
		break;
	}
	}
	cn_msg_seal(buf, total);
	return (ssize_t)total;
}

static int cn_bad(const char **why, const char *what)
{
	*why = what;
	return -EBADMSG;
}

/* The body (header checked) into m. */
static int cn_body_decode(const uint8_t *p, size_t n, struct cn_msg *m,
			  const char **why)
{
	switch (m->type) {
	case CN_MSG_HELLO: {
		struct cn_wire_hello w;
		size_t name_len;

		if (n < sizeof(w))
			return cn_bad(why, "hello body too short");
		memcpy(&w, p, sizeof(w));
		name_len = le16toh(w.hw_name_len);
		if (name_len > CN_HOST_NAME_MAX)
			return cn_bad(why, "hello host name too long");
		if (n != sizeof(w) + name_len)
			return cn_bad(why, "hello length disagrees with its name");
		if (!cn_name_ok((const char *)p + sizeof(w), name_len))
			return cn_bad(why, "hello host name not printable");
		if (w.hw_flags)
			return cn_bad(why, "hello flags set");
		memcpy(m->u.hello.host_uuid, w.hw_host_uuid, VMFS_UUID_SIZE);
		m->u.hello.slot = le32toh(w.hw_slot);
		m->u.hello.hb_gen = le64toh(w.hw_hb_gen);
		memcpy(m->u.hello.name, p + sizeof(w), name_len);
		m->u.hello.name[name_len] = '\0';
		return 0;
	}
	case CN_MSG_ASK: {
		struct cn_wire_ask w;

		if (n != sizeof(w))
			return cn_bad(why, "ask body of the wrong size");
		memcpy(&w, p, sizeof(w));
		m->u.ask.req_id = le64toh(w.aw_req_id);
		m->u.ask.addr = le64toh(w.aw_addr);
		m->u.ask.mode = le32toh(w.aw_mode);
		m->u.ask.target.slot = le32toh(w.aw_target_slot);
		m->u.ask.target.hb_gen = le64toh(w.aw_target_hb_gen);
		memcpy(m->u.ask.target.uuid, w.aw_target_uuid, VMFS_UUID_SIZE);
		if (m->u.ask.mode == VMFS_LOCK_FREE ||
		    m->u.ask.mode > VMFS_LOCK_MULTIWRITER)
			return cn_bad(why, "ask for a lock mode that does not exist");
		return 0;
	}
	case CN_MSG_RELEASED: {
		struct cn_wire_released w;

		if (n != sizeof(w))
			return cn_bad(why, "released body of the wrong size");
		memcpy(&w, p, sizeof(w));
		m->u.released.addr = le64toh(w.rw_addr);
		return 0;
	}
	case CN_MSG_BUSY: {
		struct cn_wire_busy w;

		if (n != sizeof(w))
			return cn_bad(why, "busy body of the wrong size");
		memcpy(&w, p, sizeof(w));
		m->u.busy.nodeid = le32toh(w.bw_nodeid);
		m->u.busy.pid = le32toh(w.bw_pid);
		m->u.busy.req_id = le64toh(w.bw_req_id);
		m->u.busy.addr = le64toh(w.bw_addr);
		return 0;
	}
	case CN_MSG_APP: {
		struct cn_wire_app w;
		size_t data_len;

		if (n < sizeof(w))
			return cn_bad(why, "app body too short");
		memcpy(&w, p, sizeof(w));
		data_len = le32toh(w.pw_data_len);
		if (data_len > CN_APP_MAX)
			return cn_bad(why, "app data too long");
		if (n != sizeof(w) + data_len)
			return cn_bad(why, "app length disagrees with its data");
		m->u.app.target.hb_gen = le64toh(w.pw_target_hb_gen);
		m->u.app.target.slot = le32toh(w.pw_target_slot);
		memcpy(m->u.app.target.uuid, w.pw_target_uuid, VMFS_UUID_SIZE);
		m->u.app.len = (uint32_t)data_len;
		memcpy(m->u.app.data, p + sizeof(w), data_len);
		m->u.app.data[data_len] = '\0';
		return 0;
	}
	}
	return cn_bad(why, "unknown message type");
}

int cn_msg_decode(const void *buf, size_t len, struct cn_msg *m,
		  const char **why)
{
	const uint8_t *p = buf;
	struct cn_wire_hdr h;
	unsigned version, type;

	*why = "";
	memset(m, 0, sizeof(*m));
	if (len < sizeof(h))
		return cn_bad(why, "shorter than a header");
	memcpy(&h, p, sizeof(h));
	if (le32toh(h.ch_magic) != CN_MAGIC)
		return cn_bad(why, "bad magic");
	version = le16toh(h.ch_version);
	if (!version)
		return cn_bad(why, "protocol version 0");
	if (version > CN_PROTO_VERSION) {
		*why = "newer protocol version";
		return -EPROTONOSUPPORT;
	}
	if (le32toh(h.ch_length) != len)
		return cn_bad(why, "length field disagrees with the bytes received");
	if (len > CN_MSG_MAX)
		return cn_bad(why, "longer than any message");
	if (le32toh(h.ch_crc) != cn_crc(p, len))
		return cn_bad(why, "bad crc");
	type = le16toh(h.ch_type);
	if (!cn_body_size(type))
		return cn_bad(why, "unknown message type");
	m->type = (enum cn_msg_type)type;
	return cn_body_decode(p + sizeof(h), len - sizeof(h), m, why);
}
