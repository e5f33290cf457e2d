/*
 * target.c - a target is a direct-indexed table of LUs (LUN 0..SCSI_MAX_LUN,
 * so every command's lookup is one array access), plus SAM-5 LUN encoding.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/log.h"
#include "scsi_internal.h"

/* SAM-5 4.7: address method in the two top bits of byte 0. */
#define LUN_METHOD_PERIPHERAL 0x0
#define LUN_METHOD_FLAT 0x1

void scsi_lun_encode(uint64_t lun, uint8_t out[8])
{
	memset(out, 0, 8);
	if (lun < 256) {
		out[1] = (uint8_t)lun; /* peripheral device addressing, bus 0 (SAM-5 4.7.5) */
	} else {
		out[0] = (uint8_t)(LUN_METHOD_FLAT << 6 | ((lun >> 8) & 0x3f)); /* SAM-5 4.7.7 */
		out[1] = (uint8_t)lun;
	}
}

uint64_t scsi_lun_decode(const uint8_t in[8])
{
	unsigned method = in[0] >> 6;

	for (int i = 2; i < 8; i++) {
		if (in[i] != 0) {
			return SCSI_LUN_INVALID; /* second-level addressing is not supported */
		}
	}
	if (method == LUN_METHOD_PERIPHERAL) {
		if ((in[0] & 0x3f) != 0) {
			return SCSI_LUN_INVALID; /* a nonzero bus identifier names no LU here */
		}
		return in[1];
	}
	if (method == LUN_METHOD_FLAT) {
		return (uint64_t)(in[0] & 0x3f) << 8 | in[1];
	}
	return SCSI_LUN_INVALID;
}

int scsi_target_create(const char *name, struct scsi_target **out)
{
	struct scsi_target *t;

	t = calloc(1, sizeof(*t));
	if (!t) {
		return -ENOMEM;
	}
	t->name = strdup(name ? name : "");
	t->luns = calloc(SCSI_MAX_LUN + 1, sizeof(*t->luns));
	if (!t->name || !t->luns) {
		free(t->name);
		free(t->luns);
		free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

void scsi_target_destroy(struct scsi_target *t)
{
	if (!t) {
		return;
	}
	for (size_t i = 0; i <= SCSI_MAX_LUN && t->nluns > 0; i++) {
		if (t->luns[i]) {
			scsi_lu_destroy(t->luns[i]);
			t->luns[i] = NULL;
			t->nluns--;
		}
	}
	free(t->luns);
	free(t->name);
	free(t);
}

void scsi_target_set_reactor(struct scsi_target *t, struct reactor *r)
{
	t->reactor = r;
}

int scsi_target_add_lu(struct scsi_target *t, uint64_t lun, struct scsi_lu *lu)
{
	if (lun > SCSI_MAX_LUN) {
		return -ERANGE;
	}
	if (t->luns[lun]) {
		return -EEXIST;
	}
	t->luns[lun] = lu;
	t->nluns++;
	lu->target = t;
	lu->lun = lun;
	if (!t->reactor) {
		t->reactor = lu->st->reactor;
	}
	/* SPC-4 7.6.4: the LUN inventory changed for every other LU of the target. */
	for (size_t i = 0; i <= SCSI_MAX_LUN; i++) {
		if (t->luns[i] && i != lun) {
			scsi_ua_raise_all(t->luns[i], SCSI_NEXUS_NONE, 0x3f, 0x0e);
		}
	}
	return 0;
}

struct scsi_lu *scsi_target_remove_lu(struct scsi_target *t, uint64_t lun)
{
	struct scsi_lu *lu;

	if (lun > SCSI_MAX_LUN || !t->luns[lun]) {
		return NULL;
	}
	lu = t->luns[lun];
	t->luns[lun] = NULL;
	t->nluns--;
	lu->target = NULL;
	scsi_target_raise_ua(t, NULL, 0x3f, 0x0e);
	return lu;
}

struct scsi_lu *scsi_target_get_lu(const struct scsi_target *t, uint64_t lun)
{
	if (!t || lun > SCSI_MAX_LUN) {
		return NULL;
	}
	return t->luns[lun];
}

size_t scsi_target_luns(const struct scsi_target *t, uint64_t *luns, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i <= SCSI_MAX_LUN && n < t->nluns; i++) {
		if (t->luns[i]) {
			if (n < max) {
				luns[n] = i;
			}
			n++;
		}
	}
	return t->nluns;
}

const char *scsi_target_name(const struct scsi_target *t)
{
	return t->name;
}

void scsi_target_raise_ua(struct scsi_target *t, const struct scsi_nexus *except, uint8_t asc,
			  uint8_t ascq)
{
	size_t seen = 0;

	for (size_t i = 0; i <= SCSI_MAX_LUN && seen < t->nluns; i++) {
		if (t->luns[i]) {
			seen++;
			scsi_ua_raise_all(t->luns[i], except ? except->id : SCSI_NEXUS_NONE, asc, ascq);
		}
	}
}

void scsi_nexus_gone(struct scsi_target *t, const struct scsi_nexus *n)
{
	size_t seen = 0;

	for (size_t i = 0; i <= SCSI_MAX_LUN && seen < t->nluns; i++) {
		struct scsi_lu *lu = t->luns[i];
		struct scsi_ua_state **pp;

		if (!lu) {
			continue;
		}
		seen++;
		for (pp = &lu->ua; *pp; pp = &(*pp)->next) {
			if ((*pp)->nexus_id == n->id) {
				struct scsi_ua_state *u = *pp;

				*pp = u->next;
				free(u);
				break;
			}
		}
		xcopy_nexus_gone(lu, n->id);
		/* SPC-2 5.5.1: an I_T nexus loss releases its RESERVE(6/10) reservation. */
		if (lu->res6_held && lu->res6_nexus == n->id) {
			lu->res6_held = false;
			lu->res6_nexus = 0;
		}
	}
}
