/*
 * chap.c - CHAP (RFC 1994) for the iSCSI security stage (RFC 7143 12.1.3).
 * The state machine is drawn in chap.h. Secrets are compared and hashed
 * here only; nothing in this file logs, and failure reasons (ch->why) name
 * the key that was wrong, never a value derived from a secret.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "chap.h"

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z') {
		return c - 'A';
	}
	if (c >= 'a' && c <= 'z') {
		return c - 'a' + 26;
	}
	if (c >= '0' && c <= '9') {
		return c - '0' + 52;
	}
	if (c == '+') {
		return 62;
	}
	if (c == '/') {
		return 63;
	}
	return -1;
}

static int decode_hex(const char *s, uint8_t *out, size_t max)
{
	size_t nd = strlen(s), n = (nd + 1) / 2, o = 0, i = 0;

	if (nd == 0) {
		return -EINVAL;
	}
	if (n > max) {
		return -E2BIG;
	}
	/* RFC 7143 6.1: an odd number of digits has an implied leading zero. */
	if (nd & 1) {
		int v = hex_digit(s[0]);
		if (v < 0) {
			return -EINVAL;
		}
		out[o++] = (uint8_t)v;
		i = 1;
	}
	for (; i < nd; i += 2) {
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
		if (hi < 0 || lo < 0) {
			return -EINVAL;
		}
		out[o++] = (uint8_t)(hi << 4 | lo);
	}
	return (int)o;
}

/* RFC 7143 6.1 points at RFC 4648 base64 with '=' padding. */
static int decode_b64(const char *s, uint8_t *out, size_t max)
{
	size_t len = strlen(s), o = 0;

	if (len == 0 || len % 4 != 0) {
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			if (c == '=') {
				/* only in the last group, only at its end */
				if (i + 4 != len || k < 2) {
					return -EINVAL;
				}
				pad++;
				v[k] = 0;
			} else {
				if (pad) {
					return -EINVAL;
				}
				v[k] = b64_value(c);
				if (v[k] < 0) {
					return -EINVAL;
				}
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		size_t nb = 3 - (size_t)pad;
		if (o + nb > max) {
			return -E2BIG;
		}
		out[o++] = (uint8_t)(w >> 16);
		if (nb > 1) {
			out[o++] = (uint8_t)(w >> 8);
		}
		if (nb > 2) {
			out[o++] = (uint8_t)w;
		}
	}
	return (int)o;
}

int iscsi_chap_decode(const char *s, uint8_t *out, size_t max)
{
	if (s[0] != '0') {
		return -EINVAL;
	}
	if (s[1] == 'x' || s[1] == 'X') {
		return decode_hex(s + 2, out, max);
	}
	if (s[1] == 'b' || s[1] == 'B') {
		return decode_b64(s + 2, out, max);
	}
	return -EINVAL;
}

int iscsi_chap_encode_hex(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";

	if (outlen < 3 || (outlen - 3) / 2 < len) {
		return -E2BIG;
	}
	out[0] = '0';
	out[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		out[2 + 2 * i] = digits[in[i] >> 4];
		out[3 + 2 * i] = digits[in[i] & 15];
	}
	out[2 + 2 * len] = '\0';
	return 0;
}

int iscsi_chap_md5(uint8_t id, const uint8_t *secret, size_t secret_len, const uint8_t *challenge,
		   size_t challenge_len, uint8_t digest[ISCSI_CHAP_DIGEST_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int dlen = 0;
	int rc = -EIO;

	if (!ctx) {
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, &id, 1) == 1 &&
	    EVP_DigestUpdate(ctx, secret, secret_len) == 1 &&
	    EVP_DigestUpdate(ctx, challenge, challenge_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == ISCSI_CHAP_DIGEST_LEN) {
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* RFC 1994 2: the name is any text; here printable, so logs and configs stay readable. */
static bool is_printable(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) {
			return false;
		}
	}
	return true;
}

static int check_account(const char *user, const char *secret, const char *uf, const char *sf,
			 char *err, size_t errlen)
{
	size_t sl = strlen(secret);

	if (!user[0] || strlen(user) > ISCSI_CHAP_NAME_MAX || !is_printable(user)) {
		snprintf(err, errlen, "%s: must be 1 to %d printable characters", uf,
			 ISCSI_CHAP_NAME_MAX);
		return -EINVAL;
	}
	if (sl < ISCSI_CHAP_SECRET_MIN || sl > ISCSI_CHAP_SECRET_MAX) {
		/* RFC 7143 12.1.3: at least 96 bits when not protected by IPsec. */
		snprintf(err, errlen, "%s: must be %d to %d characters (RFC 7143 12.1.3)", sf,
			 ISCSI_CHAP_SECRET_MIN, ISCSI_CHAP_SECRET_MAX);
		return -EINVAL;
	}
	if (!is_printable(secret)) {
		snprintf(err, errlen, "%s: must be printable characters", sf);
		return -EINVAL;
	}
	return 0;
}

int iscsi_chap_config_check(const struct iscsi_chap_config *c, char *err, size_t errlen)
{
	int rc = check_account(c->user, c->secret, "user", "secret", err, errlen);

	if (rc || (!c->mutual_user[0] && !c->mutual_secret[0])) {
		return rc;
	}
	rc = check_account(c->mutual_user, c->mutual_secret, "mutual_user", "mutual_secret", err,
			   errlen);
	if (rc) {
		return rc;
	}
	if (strcmp(c->secret, c->mutual_secret) == 0) {
		/* RFC 7143 12.1.3: an initiator secret MUST NOT authenticate a target. */
		snprintf(err, errlen, "mutual_secret: must differ from secret (RFC 7143 12.1.3)");
		return -EINVAL;
	}
	return 0;
}

void iscsi_chap_start(struct iscsi_chap *ch, const struct iscsi_chap_config *cfg)
{
	iscsi_chap_fini(ch);
	ch->cfg = *cfg;
	ch->state = ISCSI_CHAP_WAIT_A;
}

void iscsi_chap_fini(struct iscsi_chap *ch)
{
	explicit_bzero(ch, sizeof(*ch));
}

static const char *find_key(const struct iscsi_kv *kv, size_t n, const char *key, int *count)
{
	const char *v = NULL;

	*count = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kv[i].key, key) == 0) {
			v = kv[i].value;
			(*count)++;
		}
	}
	return v;
}

static enum iscsi_chap_result chap_fail(struct iscsi_chap *ch, enum iscsi_chap_result r,
					const char *why)
{
	ch->state = ISCSI_CHAP_FAILED;
	explicit_bzero(ch->challenge, sizeof(ch->challenge));
	snprintf(ch->why, sizeof(ch->why), "%s", why);
	return r;
}

static bool list_has_md5(const char *list)
{
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 1 && p[0] == '5') {
			return true;
		}
		if (!e) {
			break;
		}
		p = e + 1;
	}
	return false;
}

static enum iscsi_chap_result step_a(struct iscsi_chap *ch, const struct iscsi_kv *kv, size_t n,
				     struct iscsi_text_out *out)
{
	char hex[2 + 2 * ISCSI_CHAP_CHALLENGE_LEN + 1];
	const char *a;
	int cnt;

	a = find_key(kv, n, "CHAP_A", &cnt);
	for (size_t i = 0; i < n; i++) {
		if (strncmp(kv[i].key, "CHAP_", 5) == 0 && strcmp(kv[i].key, "CHAP_A") != 0) {
			return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "CHAP key before CHAP_A");
		}
	}
	if (!a) {
		/* AuthMethod was just chosen; CHAP_A comes in the next request. */
		return ISCSI_CHAP_CONTINUE;
	}
	if (cnt > 1) {
		return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "CHAP_A sent twice");
	}
	if (!list_has_md5(a)) {
		/* RFC 7143 12.1.3: no common algorithm; answer Reject and end. */
		iscsi_text_add(out, "CHAP_A", "Reject");
		return chap_fail(ch, ISCSI_CHAP_AUTH_FAIL, "initiator does not offer CHAP_A=5");
	}
	if (RAND_bytes(&ch->id, 1) != 1 ||
	    RAND_bytes(ch->challenge, (int)sizeof(ch->challenge)) != 1) {
		return chap_fail(ch, ISCSI_CHAP_TARGET_ERROR, "no random bytes for the challenge");
	}
	iscsi_chap_encode_hex(ch->challenge, sizeof(ch->challenge), hex, sizeof(hex));
	iscsi_text_add(out, "CHAP_A", "5");
	iscsi_text_add_u32(out, "CHAP_I", ch->id);
	iscsi_text_add(out, "CHAP_C", hex);
	ch->state = ISCSI_CHAP_WAIT_R;
	return ISCSI_CHAP_CONTINUE;
}

/* The initiator's challenge to us (mutual CHAP): answer with the outgoing account. */
static enum iscsi_chap_result answer_mutual(struct iscsi_chap *ch, const char *i_str,
					    const char *c_str, struct iscsi_text_out *out)
{
	uint8_t chal[ISCSI_CHAP_BINARY_MAX];
	uint8_t digest[ISCSI_CHAP_DIGEST_LEN];
	char hex[2 + 2 * ISCSI_CHAP_DIGEST_LEN + 1];
	uint64_t id;
	int len;

	if (!i_str || !c_str) {
		return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "CHAP_I without CHAP_C or back");
	}
	if (iscsi_text_number(i_str, &id) < 0 || id > 255) {
		return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "bad CHAP_I");
	}
	len = iscsi_chap_decode(c_str, chal, sizeof(chal));
	if (len <= 0) {
		return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "bad CHAP_C");
	}
	if (!ch->cfg.mutual_user[0]) {
		return chap_fail(ch, ISCSI_CHAP_AUTH_FAIL,
				 "initiator asks for mutual CHAP, none configured");
	}
	/* RFC 7143 12.1.3: a reflected challenge would let the initiator use us
	 * as an oracle for its own response. */
	if ((size_t)len == sizeof(ch->challenge) &&
	    CRYPTO_memcmp(chal, ch->challenge, sizeof(ch->challenge)) == 0) {
		return chap_fail(ch, ISCSI_CHAP_AUTH_FAIL, "initiator reflected our CHAP_C");
	}
	if (iscsi_chap_md5((uint8_t)id, (const uint8_t *)ch->cfg.mutual_secret,
			   strlen(ch->cfg.mutual_secret), chal, (size_t)len, digest) < 0) {
		return chap_fail(ch, ISCSI_CHAP_TARGET_ERROR, "MD5 failed");
	}
	iscsi_chap_encode_hex(digest, sizeof(digest), hex, sizeof(hex));
	explicit_bzero(digest, sizeof(digest));
	iscsi_text_add(out, "CHAP_N", ch->cfg.mutual_user);
	iscsi_text_add(out, "CHAP_R", hex);
	return ISCSI_CHAP_SUCCESS;
}

static enum iscsi_chap_result step_r(struct iscsi_chap *ch, const struct iscsi_kv *kv, size_t n,
				     struct iscsi_text_out *out)
{
	static const char *const keys[] = { "CHAP_N", "CHAP_R", "CHAP_I", "CHAP_C" };
	const char *v[4];
	uint8_t resp[ISCSI_CHAP_BINARY_MAX];
	uint8_t expect[ISCSI_CHAP_DIGEST_LEN];
	enum iscsi_chap_result r;
	bool ok;
	int len;

	for (size_t k = 0; k < 4; k++) {
		int cnt;
		v[k] = find_key(kv, n, keys[k], &cnt);
		if (cnt > 1) {
			return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "CHAP key sent twice");
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kv[i].key, "CHAP_A") == 0) {
			return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "CHAP_A sent again");
		}
	}
	if (!v[0] || !v[1]) {
		return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "CHAP_N or CHAP_R missing");
	}
	len = iscsi_chap_decode(v[1], resp, sizeof(resp));
	if (len < 0) {
		return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR, "bad CHAP_R encoding");
	}
	if (iscsi_chap_md5(ch->id, (const uint8_t *)ch->cfg.secret, strlen(ch->cfg.secret),
			   ch->challenge, sizeof(ch->challenge), expect) < 0) {
		return chap_fail(ch, ISCSI_CHAP_TARGET_ERROR, "MD5 failed");
	}
	/* Both checks always run, so the time taken does not tell which one failed. */
	ok = (size_t)len == sizeof(expect) && CRYPTO_memcmp(resp, expect, sizeof(expect)) == 0;
	ok = (strcmp(v[0], ch->cfg.user) == 0) & ok;
	explicit_bzero(expect, sizeof(expect));
	if (!ok) {
		return chap_fail(ch, ISCSI_CHAP_AUTH_FAIL, "wrong CHAP_N or CHAP_R");
	}
	if (v[2] || v[3]) {
		r = answer_mutual(ch, v[2], v[3], out);
		if (r != ISCSI_CHAP_SUCCESS) {
			return r;
		}
	}
	/* 12.1.3: a challenge is good for one response only. */
	explicit_bzero(ch->challenge, sizeof(ch->challenge));
	ch->state = ISCSI_CHAP_DONE;
	return ISCSI_CHAP_SUCCESS;
}

enum iscsi_chap_result iscsi_chap_step(struct iscsi_chap *ch, const struct iscsi_kv *kv, size_t n,
				       struct iscsi_text_out *out)
{
	switch (ch->state) {
	case ISCSI_CHAP_WAIT_A:
		return step_a(ch, kv, n, out);
	case ISCSI_CHAP_WAIT_R:
		return step_r(ch, kv, n, out);
	case ISCSI_CHAP_DONE:
		for (size_t i = 0; i < n; i++) {
			if (strncmp(kv[i].key, "CHAP_", 5) == 0) {
				return chap_fail(ch, ISCSI_CHAP_INITIATOR_ERROR,
						 "CHAP key after authentication");
			}
		}
		return ISCSI_CHAP_SUCCESS;
	case ISCSI_CHAP_FAILED:
		break;
	}
	return ISCSI_CHAP_AUTH_FAIL;
}
