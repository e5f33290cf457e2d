/*
 * fuzz_login_keys.c - text key parsing and negotiation (iscsi/text.c).
 * Input: one flag byte (bit 0: discovery session), then NUL-separated
 * key=value text as a Login or Text Request would carry it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iscsi/iscsi_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iscsi_kv kv[128];
	struct iscsi_params p;
	char out_buf[8192];
	struct iscsi_text_out out = { .buf = out_buf, .cap = sizeof(out_buf) };
	char *text;
	bool discovery;
	int n;

	if (size < 1 || size > 70000) {
		return 0;
	}
	discovery = data[0] & 1;
	text = malloc(size);
	if (!text) {
		return 0;
	}
	memcpy(text, data + 1, size - 1);
	iscsi_params_default(&p);
	n = iscsi_text_parse(text, size - 1, kv, 128);
	for (int i = 0; i < n; i++) {
		uint64_t v;
		(void)iscsi_text_number(kv[i].value, &v);
		if (iscsi_negotiate_key(&p, discovery, kv[i].key, kv[i].value, &out) ==
		    ISCSI_NEG_UNKNOWN) {
			iscsi_text_add(&out, kv[i].key, "NotUnderstood");
		}
	}
	iscsi_params_finish(&p);
	if (p.first_burst > p.max_burst || out.len > out.cap) {
		abort();
	}
	free(text);
	return 0;
}
