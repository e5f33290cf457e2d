/*
 * manifest.c - the volume manifest object: a small JSON document recording
 * the geometry a chunked volume was created with, so a later open with a
 * different chunk or block size cannot silently scramble the data. Format in
 * docs/OBJECT-FORMAT.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "chunk.h"

int chunk_manifest_init(struct chunk_manifest *m, uint64_t size, uint32_t chunk_size,
			uint32_t block_size)
{
	uint8_t u[16];
	ssize_t n;
	int w;

	memset(m, 0, sizeof(*m));
	n = getrandom(u, sizeof(u), 0);
	if (n != (ssize_t)sizeof(u)) {
		return n < 0 ? -errno : -EIO;
	}
	/* RFC 4122 4.4: version 4 (random), variant 10xx. */
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	w = snprintf(m->volume_id, sizeof(m->volume_id),
		     "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		     u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		     u[13], u[14], u[15]);
	if (w != 36) {
		return -EINVAL;
	}
	m->size = size;
	m->chunk_size = chunk_size;
	m->block_size = block_size;
	m->created = (uint64_t)time(NULL);
	return 0;
}

int chunk_manifest_encode(const struct chunk_manifest *m, char *buf, size_t len)
{
	json_t *o;
	size_t n;

	/* json_integer is signed 64-bit; sizes beyond 2^63 cannot be configured anyway. */
	o = json_pack("{s:s, s:i, s:s, s:I, s:I, s:I, s:I}", "magic", CHUNK_MANIFEST_MAGIC,
		      "format", CHUNK_MANIFEST_VERSION, "volume_id", m->volume_id, "size",
		      (json_int_t)m->size, "chunk_size", (json_int_t)m->chunk_size, "block_size",
		      (json_int_t)m->block_size, "created", (json_int_t)m->created);
	if (!o) {
		return -ENOMEM;
	}
	n = json_dumpb(o, buf, len, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (n == 0 || n >= len) {
		return -ENOSPC;
	}
	buf[n] = '\0';
	return (int)n;
}

static int get_uint(json_t *o, const char *name, uint64_t max, uint64_t *out, char *err,
		    size_t errlen)
{
	json_t *v = json_object_get(o, name);
	json_int_t x;

	if (!json_is_integer(v)) {
		snprintf(err, errlen, "manifest: \"%s\" missing or not an integer", name);
		return -EBADMSG;
	}
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > max) {
		snprintf(err, errlen, "manifest: \"%s\" out of range", name);
		return -EBADMSG;
	}
	*out = (uint64_t)x;
	return 0;
}

int chunk_manifest_decode(const char *buf, size_t len, struct chunk_manifest *m, char *err,
			  size_t errlen)
{
	json_error_t jerr;
	json_t *o, *v;
	uint64_t x;
	int ret = -EBADMSG;

	memset(m, 0, sizeof(*m));
	o = json_loadb(buf, len, 0, &jerr);
	if (!o) {
		snprintf(err, errlen, "manifest: not JSON: %s (line %d)", jerr.text, jerr.line);
		return -EBADMSG;
	}
	if (!json_is_object(o)) {
		snprintf(err, errlen, "manifest: not a JSON object");
		goto out;
	}
	v = json_object_get(o, "magic");
	if (!json_is_string(v) || strcmp(json_string_value(v), CHUNK_MANIFEST_MAGIC) != 0) {
		snprintf(err, errlen, "manifest: magic is not \"%s\"", CHUNK_MANIFEST_MAGIC);
		goto out;
	}
	ret = get_uint(o, "format", UINT32_MAX, &x, err, errlen);
	if (ret) {
		goto out;
	}
	if (x != CHUNK_MANIFEST_VERSION) {
		snprintf(err, errlen,
			 "manifest: format version %" PRIu64 " not supported (this is %d)", x,
			 CHUNK_MANIFEST_VERSION);
		ret = -EBADMSG;
		goto out;
	}
	v = json_object_get(o, "volume_id");
	if (!json_is_string(v) || strlen(json_string_value(v)) != 36) {
		snprintf(err, errlen, "manifest: bad \"volume_id\"");
		ret = -EBADMSG;
		goto out;
	}
	memcpy(m->volume_id, json_string_value(v), 37);
	ret = get_uint(o, "size", INT64_MAX, &m->size, err, errlen);
	if (ret) {
		goto out;
	}
	ret = get_uint(o, "chunk_size", CHUNK_SIZE_MAX, &x, err, errlen);
	if (ret) {
		goto out;
	}
	m->chunk_size = (uint32_t)x;
	ret = get_uint(o, "block_size", 65536, &x, err, errlen);
	if (ret) {
		goto out;
	}
	m->block_size = (uint32_t)x;
	if (m->chunk_size < CHUNK_SIZE_MIN || (m->chunk_size & (m->chunk_size - 1)) ||
	    m->block_size == 0 || m->chunk_size % m->block_size) {
		snprintf(err, errlen,
			 "manifest: inconsistent chunk_size %" PRIu32 " / block_size %" PRIu32,
			 m->chunk_size, m->block_size);
		ret = -EBADMSG;
		goto out;
	}
	v = json_object_get(o, "created");
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		m->created = (uint64_t)json_integer_value(v);
	}
	ret = 0;
out:
	json_decref(o);
	return ret;
}
