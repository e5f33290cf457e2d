/*
 * chap.h - the target side of CHAP (RFC 1994) as iSCSI uses it in the
 * security stage (RFC 7143 12.1.3), one-way and mutual. Private to the
 * iscsi module; login.c drives it.
 *
 *   WAIT_A --CHAP_A lists 5--> we send CHAP_A=5, CHAP_I, CHAP_C --> WAIT_R
 *   WAIT_R --CHAP_N/CHAP_R verified [+ CHAP_I/CHAP_C answered]--> DONE
 *   any    --bad or unexpected keys, wrong response--> FAILED (terminal)
 *
 * Invariants: a challenge is used for exactly one response (it is wiped once
 * the response was checked); the secrets live in the struct only between
 * iscsi_chap_start() and iscsi_chap_fini(), which wipes them.
 */
#ifndef S3TGT_ISCSI_CHAP_H
#define S3TGT_ISCSI_CHAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iscsi_internal.h"
#include "s3tgt/iscsi.h"

#define ISCSI_CHAP_ALG_MD5 5	      /* RFC 1994 / RFC 7143 12.1.3: the only algorithm */
#define ISCSI_CHAP_DIGEST_LEN 16      /* MD5 */
#define ISCSI_CHAP_CHALLENGE_LEN 32   /* ours; RFC 7143 12.1.3 wants at least 16 bytes */
#define ISCSI_CHAP_BINARY_MAX 1024    /* largest CHAP_C we accept from an initiator */

enum iscsi_chap_state {
	ISCSI_CHAP_WAIT_A,
	ISCSI_CHAP_WAIT_R,
	ISCSI_CHAP_DONE,
	ISCSI_CHAP_FAILED,
};

enum iscsi_chap_result {
	ISCSI_CHAP_CONTINUE,	    /* send the keys in out, stay in the security stage */
	ISCSI_CHAP_SUCCESS,	    /* initiator authenticated (keys in out for mutual) */
	ISCSI_CHAP_AUTH_FAIL,	    /* login status 0x0201 */
	ISCSI_CHAP_INITIATOR_ERROR, /* login status 0x0200: malformed or misplaced keys */
	ISCSI_CHAP_TARGET_ERROR,    /* login status 0x0300: no randomness, crypto failure */
};

struct iscsi_chap {
	enum iscsi_chap_state state;
	struct iscsi_chap_config cfg; /* a copy: management may change the target meanwhile */
	uint8_t id;
	uint8_t challenge[ISCSI_CHAP_CHALLENGE_LEN];
	char why[96]; /* reason of a failure, for the log; never contains a secret */
};

/* Copy cfg (borrowed) and reset the exchange. */
void iscsi_chap_start(struct iscsi_chap *ch, const struct iscsi_chap_config *cfg);
/*
 * Feed the keys of one complete login request (only CHAP_* keys are looked
 * at); answers are appended to out.
 */
enum iscsi_chap_result iscsi_chap_step(struct iscsi_chap *ch, const struct iscsi_kv *kv, size_t n,
				       struct iscsi_text_out *out);
/* Wipe secrets and challenge. Safe on a zeroed struct. */
void iscsi_chap_fini(struct iscsi_chap *ch);

/*
 * The CHAP accounts set on a target with iscsi_server_set_chap(), NULL when
 * the target needs none (target_admin.c). Borrowed until the next change.
 */
const struct iscsi_chap_config *iscsi_target_chap(struct iscsi_server *srv, const char *target);

/* True once an iscsi_chap_step() returned ISCSI_CHAP_SUCCESS. */
static inline bool iscsi_chap_is_done(const struct iscsi_chap *ch)
{
	return ch->state == ISCSI_CHAP_DONE;
}

/*
 * RFC 7143 6.1 binary-value: "0x" + hex digits or "0b" + base64. Returns the
 * number of bytes decoded into out, or -EINVAL (syntax) / -E2BIG (> max).
 */
int iscsi_chap_decode(const char *s, uint8_t *out, size_t max);
/* Encode as "0x" + lowercase hex; -E2BIG if outlen is too small. */
int iscsi_chap_encode_hex(const uint8_t *in, size_t len, char *out, size_t outlen);
/* RFC 1994 4.1: MD5(identifier || secret || challenge). Returns 0 or -EIO. */
int iscsi_chap_md5(uint8_t id, const uint8_t *secret, size_t secret_len, const uint8_t *challenge,
		   size_t challenge_len, uint8_t digest[ISCSI_CHAP_DIGEST_LEN]);

#endif
