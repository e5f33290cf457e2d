/*
 * spc.c - primary commands (SPC-4): INQUIRY and VPD pages, REPORT LUNS,
 * TEST UNIT READY, REQUEST SENSE, MODE SENSE/SELECT, RESERVE/RELEASE(6/10),
 * START STOP UNIT and REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

#define INQ_STD_LEN 74	      /* through the version descriptors (SPC-4 6.6.2) */
#define VPD_BUF 512
#define PROTO_ISCSI 0x5	      /* SPC-4 7.6.1 table 361 */
#define REVISION "0001"

enum sense_reason spc_parse_none(struct scsi_cmd *cmd)
{
	return SENSE_OK;
}

void spc_exec_good(struct scsi_cmd *cmd)
{
	scsi_cmd_complete(cmd, SENSE_OK);
}

void spc_exec_tur(struct scsi_cmd *cmd)
{
	scsi_cmd_complete(cmd, SENSE_OK);
}

/* ------------------------------------------------------------ INQUIRY */

enum sense_reason spc_parse_inquiry(struct scsi_cmd *cmd)
{
	if (cmd->cdb[1] & 0xfe) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 1); /* CMDDT is obsolete */
	}
	if (!(cmd->cdb[1] & 0x01) && cmd->cdb[2] != 0) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, -1);
	}
	return SENSE_OK;
}

static void pad_ascii(uint8_t *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

static size_t inquiry_standard(const struct scsi_lu *lu, uint8_t *b)
{
	memset(b, 0, INQ_STD_LEN);
	b[0] = lu ? 0x00 : 0x7f; /* SPC-4 6.6.2: qualifier 011b, type 1Fh for no LU */
	b[2] = 0x06;		 /* VERSION: SPC-4 */
	b[3] = 0x10 | 0x02;	 /* HISUP, RESPONSE DATA FORMAT 2 */
	b[4] = INQ_STD_LEN - 5;
	if (lu) {
		b[5] = 0x08; /* 3PC: the LU is an EXTENDED COPY copy manager (SPC-4 6.4) */
	}
	b[7] = 0x02; /* CMDQUE */
	pad_ascii(b + 8, 8, lu ? lu->vendor : "S3TGT");
	pad_ascii(b + 16, 16, lu ? lu->product : "s3tgt");
	pad_ascii(b + 32, 4, REVISION);
	/* Version descriptors (SPC-4 table 147): SAM-5, iSCSI, SPC-4, SBC-3. */
	put_be16(b + 58, 0x00a0);
	put_be16(b + 60, 0x0960);
	put_be16(b + 62, 0x0460);
	put_be16(b + 64, 0x04c0);
	return INQ_STD_LEN;
}

static size_t vpd_designator(uint8_t *p, uint8_t code_set, uint8_t assoc_type, bool piv,
			     const uint8_t *id, size_t len)
{
	p[0] = (uint8_t)((piv ? PROTO_ISCSI << 4 : 0) | code_set);
	p[1] = (uint8_t)((piv ? 0x80 : 0) | assoc_type);
	p[2] = 0;
	p[3] = (uint8_t)len;
	memcpy(p + 4, id, len);
	return 4 + len;
}

/* A SCSI name string: UTF-8, NUL terminated, padded to a multiple of 4 (SPC-4 7.8.6.11). */
static size_t vpd_name(uint8_t *p, uint8_t assoc, const char *name)
{
	uint8_t id[256] = { 0 };
	size_t n = strlen(name);

	if (n > 251) {
		n = 251;
	}
	memcpy(id, name, n);
	n = (n + 1 + 3) & ~(size_t)3;
	return vpd_designator(p, 0x3, (uint8_t)(assoc | 0x08), true, id, n);
}

static size_t vpd_83(const struct scsi_cmd *cmd, uint8_t *b)
{
	const struct scsi_lu *lu = cmd->lu;
	uint8_t id[8];
	char name[256];
	size_t n = 4;
	const char *tname = cmd->target ? scsi_target_name(cmd->target) : "";
	uint16_t port = cmd->nexus ? cmd->nexus->rel_tgt_port : 1;

	scsi_lu_naa(lu, id);
	n += vpd_designator(b + n, 0x1, 0x03, false, id, 8);
	/* Relative target port (type 4h) and target port group (type 5h), association 01b. */
	memset(id, 0, 4);
	put_be16(id + 2, port);
	n += vpd_designator(b + n, 0x1, 0x10 | 0x04, true, id, 4);
	put_be16(id + 2, 1);
	n += vpd_designator(b + n, 0x1, 0x10 | 0x05, true, id, 4);
	/* Target port name "<iqn>,t,0x<tpgt>" (RFC 7143 / SPC-4 7.6.4.6) and device name. */
	if (snprintf(name, sizeof(name), "%s,t,0x%04x", tname, port) >= (int)sizeof(name)) {
		name[sizeof(name) - 1] = '\0';
	}
	n += vpd_name(b + n, 0x10, name);
	n += vpd_name(b + n, 0x20, tname);
	return n;
}

static size_t vpd_b0(const struct scsi_lu *lu, uint8_t *b)
{
	uint32_t opt = lu->st->opt_io_bytes / lu->block_size;

	memset(b + 4, 0, 0x3c);
	b[5] = (uint8_t)sbc_max_caw_blocks();
	put_be16(b + 6, (uint16_t)(opt > 0xffff ? 0 : opt));
	put_be32(b + 8, sbc_max_xfer_blocks(lu));
	put_be32(b + 12, opt);
	if (lu->st->caps & STORE_CAP_UNMAP) {
		put_be32(b + 20, sbc_max_unmap_blocks(lu));
		put_be32(b + 24, sbc_max_unmap_descs());
		put_be32(b + 28, opt ? opt : 1);
	}
	put_be64(b + 36, sbc_max_ws_blocks(lu));
	/*
	 * SBC-4 6.6.4: MAXIMUM ATOMIC TRANSFER LENGTH; ATOMIC ALIGNMENT and ATOMIC
	 * TRANSFER LENGTH GRANULARITY 0 (none), no atomic boundaries.
	 */
	put_be32(b + 44, sbc_max_atomic_blocks(lu));
	return 4 + 0x3c;
}

static size_t vpd_b2(const struct scsi_lu *lu, uint8_t *b)
{
	memset(b + 4, 0, 4);
	if (lu->st->caps & STORE_CAP_UNMAP) {
		/* LBPU, LBPWS, LBPWS10; unmapped blocks read zeros: LBPRZ. */
		b[5] = 0x80 | 0x40 | 0x20 | 0x04;
	}
	b[6] = sbc_is_thin(lu) ? 0x02 : 0x00; /* PROVISIONING TYPE: thin / full */
	return 8;
}

static const uint8_t g_vpd_pages[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };

void spc_exec_inquiry(struct scsi_cmd *cmd)
{
	uint8_t b[VPD_BUF];
	const struct scsi_lu *lu = cmd->lu;
	uint32_t alloc = get_be16(cmd->cdb + 3);
	size_t n;

	if (!(cmd->cdb[1] & 0x01)) {
		n = inquiry_standard(lu, b);
		scsi_cmd_complete(cmd, scsi_reply(cmd, b, n, alloc));
		return;
	}
	memset(b, 0, 4);
	b[1] = cmd->cdb[2];
	if (!lu) {
		b[0] = 0x7f;
		scsi_cmd_complete(cmd, scsi_reply(cmd, b, 4, alloc));
		return;
	}
	switch (cmd->cdb[2]) {
	case 0x00:
		memcpy(b + 4, g_vpd_pages, sizeof(g_vpd_pages));
		n = 4 + sizeof(g_vpd_pages);
		break;
	case 0x80:
		n = strlen(lu->serial);
		memcpy(b + 4, lu->serial, n);
		n += 4;
		break;
	case 0x83:
		n = vpd_83(cmd, b);
		break;
	case 0xb0:
		n = vpd_b0(lu, b);
		break;
	case 0xb1:
		memset(b + 4, 0, 0x3c);
		put_be16(b + 4, 0x0001); /* MEDIUM ROTATION RATE: non-rotating (SBC-3 6.6.5) */
		/* WABEREQ 01b: reads after SANITIZE BLOCK ERASE succeed (they return zeros). */
		b[7] = 0x40;
		n = 4 + 0x3c;
		break;
	case 0xb2:
		n = vpd_b2(lu, b);
		break;
	default:
		scsi_cmd_complete(cmd, scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, -1));
		return;
	}
	put_be16(b + 2, (uint16_t)(n - 4));
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, n, alloc));
}

/* -------------------------------------------------------- REPORT LUNS */

enum sense_reason spc_parse_report_luns(struct scsi_cmd *cmd)
{
	if (cmd->cdb[2] > 2) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, -1);
	}
	/* SPC-4 6.33: an allocation length below 16 is an error. */
	if (get_be32(cmd->cdb + 6) < 16) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 6, -1);
	}
	return SENSE_OK;
}

void spc_exec_report_luns(struct scsi_cmd *cmd)
{
	const struct scsi_target *t = cmd->target;
	uint32_t alloc = get_be32(cmd->cdb + 6);
	size_t nluns = (cmd->cdb[2] == 1 || !t) ? 0 : t->nluns;
	size_t len = 8 + 8 * (nluns ? nluns : 1);
	uint8_t *b = calloc(1, len);
	size_t n = 8;
	enum sense_reason r;

	if (!b) {
		scsi_cmd_complete(cmd, SENSE_INTERNAL_FAILURE);
		return;
	}
	if (nluns) {
		for (size_t i = 0, seen = 0; i <= SCSI_MAX_LUN && seen < nluns; i++) {
			if (t->luns[i]) {
				scsi_lun_encode(i, b + n);
				n += 8;
				seen++;
			}
		}
	} else if (cmd->cdb[2] != 1) {
		n += 8; /* SPC-4 6.33: LUN 0 is always reported */
	}
	put_be32(b, (uint32_t)(n - 8));
	r = scsi_reply(cmd, b, n, alloc);
	free(b);
	scsi_cmd_complete(cmd, r);
}

/* ------------------------------------------------------ REQUEST SENSE */

enum sense_reason spc_parse_request_sense(struct scsi_cmd *cmd)
{
	if (cmd->cdb[1] & 0x01) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 0); /* descriptor format */
	}
	return SENSE_OK;
}

void spc_exec_request_sense(struct scsi_cmd *cmd)
{
	uint8_t b[SCSI_SENSE_MAX];
	uint8_t asc, ascq;
	uint32_t len;

	/* SPC-4 6.39: report (and clear) a pending UA, else NO SENSE, as data. */
	if (!cmd->lu) {
		scsi_build_sense(cmd, SENSE_LUN_NOT_SUPPORTED, 0, 0);
	} else if (scsi_ua_pop(cmd->lu, cmd->nexus, &asc, &ascq)) {
		scsi_build_sense(cmd, SENSE_UNIT_ATTENTION, asc, ascq);
	} else {
		memset(cmd->sense, 0, 18);
		cmd->sense[0] = 0x70;
		cmd->sense[7] = 10;
		cmd->sense_len = 18;
	}
	len = cmd->sense_len;
	memcpy(b, cmd->sense, len);
	cmd->status = SCSI_STATUS_GOOD;
	cmd->sense_len = 0;
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, len, cmd->cdb[4]));
}

/* --------------------------------------------------- MODE SENSE/SELECT */

#define MP_CACHING 0x08
#define MP_CONTROL 0x0a
#define MP_IEC 0x1c
#define MP_ALL 0x3f
#define PC_CURRENT 0
#define PC_CHANGEABLE 1
#define PC_DEFAULT 2
#define PC_SAVED 3

void spc_mode_reset(struct scsi_lu *lu)
{
	lu->wce = (lu->st->caps & STORE_CAP_WRITE_CACHE) != 0;
	lu->swp = false;
	lu->d_sense = false;
}

static bool wce_changeable(const struct scsi_lu *lu)
{
	return (lu->st->caps & STORE_CAP_WRITE_CACHE) != 0;
}

/* Caching mode page (SBC-3 6.4.5). */
static size_t page_caching(const struct scsi_lu *lu, unsigned pc, uint8_t *p)
{
	memset(p, 0, 20);
	p[0] = MP_CACHING;
	p[1] = 0x12;
	switch (pc) {
	case PC_CHANGEABLE:
		p[2] = wce_changeable(lu) ? 0x04 : 0;
		break;
	case PC_DEFAULT:
		p[2] = wce_changeable(lu) ? 0x04 : 0;
		break;
	default:
		p[2] = lu->wce ? 0x04 : 0;
		break;
	}
	return 20;
}

/* Control mode page (SPC-4 7.5.8). */
static size_t page_control(const struct scsi_lu *lu, unsigned pc, uint8_t *p)
{
	memset(p, 0, 12);
	p[0] = MP_CONTROL;
	p[1] = 0x0a;
	switch (pc) {
	case PC_CHANGEABLE:
		p[4] = 0x08; /* SWP */
		break;
	case PC_DEFAULT:
		p[3] = 0x10; /* QUEUE ALGORITHM MODIFIER 1: unrestricted reordering */
		break;
	default:
		p[3] = 0x10;
		p[4] = lu->swp ? 0x08 : 0;
		break;
	}
	put_be16(p + 8, 0xffff); /* BUSY TIMEOUT PERIOD: unlimited */
	return 12;
}

/* Informational exceptions control page (SPC-4 7.5.14): no reporting. */
static size_t page_iec(unsigned pc, uint8_t *p)
{
	memset(p, 0, 12);
	p[0] = MP_IEC;
	p[1] = 0x0a;
	return 12;
}

enum sense_reason spc_parse_mode_sense(struct scsi_cmd *cmd)
{
	unsigned page = cmd->cdb[2] & 0x3f;
	unsigned pc = cmd->cdb[2] >> 6;
	unsigned sub = cmd->cdb[3];

	if (pc == PC_SAVED) {
		return SENSE_SAVING_NOT_SUPPORTED;
	}
	if (page != MP_CACHING && page != MP_CONTROL && page != MP_IEC && page != MP_ALL) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 5);
	}
	if (sub != 0 && !(sub == 0xff && page == MP_ALL)) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 3, -1);
	}
	return SENSE_OK;
}

void spc_exec_mode_sense(struct scsi_cmd *cmd)
{
	const struct scsi_lu *lu = cmd->lu;
	bool ten = cmd->cdb[0] == SCSI_OP_MODE_SENSE_10;
	bool dbd = cmd->cdb[1] & 0x08;
	bool llbaa = ten && (cmd->cdb[1] & 0x10);
	unsigned page = cmd->cdb[2] & 0x3f;
	unsigned pc = cmd->cdb[2] >> 6;
	uint32_t alloc = ten ? get_be16(cmd->cdb + 7) : cmd->cdb[4];
	uint8_t b[256];
	size_t hdr = ten ? 8 : 4;
	size_t n = hdr;
	size_t bdl = 0;
	uint8_t dev_spec = 0x10; /* DPOFUA (SBC-3 6.4.1) */

	memset(b, 0, sizeof(b));
	if (lu->read_only || lu->swp) {
		dev_spec |= 0x80; /* WP */
	}
	if (!dbd) {
		if (llbaa) {
			put_be64(b + n, lu->nblocks);
			put_be32(b + n + 12, lu->block_size);
			bdl = 16;
		} else {
			put_be32(b + n, lu->nblocks > 0xffffffffull ? 0xffffffffu
								   : (uint32_t)lu->nblocks);
			put_be24(b + n + 5, lu->block_size);
			bdl = 8;
		}
		n += bdl;
	}
	if (page == MP_CACHING || page == MP_ALL) {
		n += page_caching(lu, pc, b + n);
	}
	if (page == MP_CONTROL || page == MP_ALL) {
		n += page_control(lu, pc, b + n);
	}
	if (page == MP_IEC || page == MP_ALL) {
		n += page_iec(pc, b + n);
	}
	if (ten) {
		put_be16(b, (uint16_t)(n - 2));
		b[3] = dev_spec;
		b[4] = llbaa ? 0x01 : 0;
		put_be16(b + 6, (uint16_t)bdl);
	} else {
		b[0] = (uint8_t)(n - 1);
		b[2] = dev_spec;
		b[3] = (uint8_t)bdl;
	}
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, n, alloc));
}

enum sense_reason spc_parse_mode_select(struct scsi_cmd *cmd)
{
	bool ten = cmd->cdb[0] == SCSI_OP_MODE_SELECT_10;
	uint32_t len = ten ? get_be16(cmd->cdb + 7) : cmd->cdb[4];

	if (cmd->cdb[1] & 0x01) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 0); /* SP: no saved pages */
	}
	if (len > 0 && !(cmd->cdb[1] & 0x10)) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 4); /* PF=0: vendor format */
	}
	cmd->xfer_len = len;
	return SENSE_OK;
}

static enum sense_reason param_field(struct scsi_cmd *cmd, size_t byte, int bit)
{
	return scsi_field(cmd, SENSE_INVALID_FIELD_PARAM, (unsigned)byte, bit);
}

/*
 * Every byte of a page must equal the current value except the changeable
 * bits (SPC-4 6.11: otherwise INVALID FIELD IN PARAMETER LIST).
 */
static enum sense_reason check_page(struct scsi_cmd *cmd, const uint8_t *p, const uint8_t *cur,
				    const uint8_t *chg, size_t len, size_t off)
{
	for (size_t i = 2; i < len; i++) {
		if ((p[i] & ~chg[i]) != (cur[i] & ~chg[i])) {
			return param_field(cmd, off + i, -1);
		}
	}
	return SENSE_OK;
}

void spc_exec_mode_select(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;
	bool ten = cmd->cdb[0] == SCSI_OP_MODE_SELECT_10;
	const uint8_t *d = cmd->data_out;
	size_t len = cmd->xfer_len;
	size_t hdr = ten ? 8 : 4;
	size_t off, bdl;
	uint8_t cur[20], chg[20];
	bool wce = lu->wce, swp = lu->swp;
	enum sense_reason r;

	if (len == 0) {
		scsi_cmd_complete(cmd, SENSE_OK);
		return;
	}
	if (len < hdr) {
		scsi_cmd_complete(cmd, SENSE_PARAM_LIST_LENGTH);
		return;
	}
	bdl = ten ? get_be16(d + 6) : d[3];
	if (bdl != 0 && bdl != 8) {
		scsi_cmd_complete(cmd, param_field(cmd, ten ? 6 : 3, -1));
		return;
	}
	if (hdr + bdl > len) {
		scsi_cmd_complete(cmd, SENSE_PARAM_LIST_LENGTH);
		return;
	}
	if (bdl == 8 && get_be24(d + hdr + 5) != lu->block_size) {
		scsi_cmd_complete(cmd, param_field(cmd, hdr + 5, -1));
		return;
	}
	for (off = hdr + bdl; off < len;) {
		const uint8_t *p = d + off;
		size_t plen;

		if (len - off < 2) {
			scsi_cmd_complete(cmd, SENSE_PARAM_LIST_LENGTH);
			return;
		}
		if (p[0] & 0x40) {
			scsi_cmd_complete(cmd, param_field(cmd, off, 6)); /* SPF: no subpages */
			return;
		}
		plen = 2u + p[1];
		if (plen > len - off) {
			scsi_cmd_complete(cmd, SENSE_PARAM_LIST_LENGTH);
			return;
		}
		switch (p[0] & 0x3f) {
		case MP_CACHING:
			if (plen != page_caching(lu, PC_CURRENT, cur)) {
				r = param_field(cmd, off + 1, -1);
				goto fail;
			}
			page_caching(lu, PC_CHANGEABLE, chg);
			r = check_page(cmd, p, cur, chg, plen, off);
			if (r != SENSE_OK) {
				goto fail;
			}
			wce = (p[2] & 0x04) != 0;
			break;
		case MP_CONTROL:
			if (plen != page_control(lu, PC_CURRENT, cur)) {
				r = param_field(cmd, off + 1, -1);
				goto fail;
			}
			page_control(lu, PC_CHANGEABLE, chg);
			r = check_page(cmd, p, cur, chg, plen, off);
			if (r != SENSE_OK) {
				goto fail;
			}
			swp = (p[4] & 0x08) != 0;
			break;
		case MP_IEC:
			if (plen != page_iec(PC_CURRENT, cur)) {
				r = param_field(cmd, off + 1, -1);
				goto fail;
			}
			memset(chg, 0, sizeof(chg));
			r = check_page(cmd, p, cur, chg, plen, off);
			if (r != SENSE_OK) {
				goto fail;
			}
			break;
		default:
			r = param_field(cmd, off, 5);
			goto fail;
		}
		off += plen;
	}
	if (wce != lu->wce || swp != lu->swp) {
		lu->wce = wce;
		lu->swp = swp;
		/* SPC-4 7.5.1: other nexuses learn of the change through a UA. */
		scsi_ua_raise_all(lu, cmd->nexus->id, 0x2a, 0x01);
	}
	scsi_cmd_complete(cmd, SENSE_OK);
	return;
fail:
	scsi_cmd_complete(cmd, r);
}

/* ---------------------------------------------------- RESERVE/RELEASE */

enum sense_reason spc_parse_reserve(struct scsi_cmd *cmd)
{
	/* Third-party and extent reservations are not supported (SPC-2 7.21). */
	if (cmd->cdb[0] == SCSI_OP_RESERVE_10 || cmd->cdb[0] == SCSI_OP_RELEASE_10) {
		if (cmd->cdb[1] & 0x13) {
			return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, -1);
		}
	} else if (cmd->cdb[1] & 0x01) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 1, 0);
	}
	return SENSE_OK;
}

void spc_exec_reserve(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;

	/* SPC-4 5.13.3: RESERVE(6/10) conflicts with any persistent reservation. */
	if (lu->pr.holder || lu->pr.regs) {
		scsi_cmd_complete(cmd, SENSE_RESERVATION_CONFLICT);
		return;
	}
	lu->res6_held = true;
	lu->res6_nexus = cmd->nexus->id;
	scsi_cmd_complete(cmd, SENSE_OK);
}

void spc_exec_release(struct scsi_cmd *cmd)
{
	struct scsi_lu *lu = cmd->lu;

	/* SPC-2 7.17: releasing someone else's reservation is a no-op with GOOD. */
	if (lu->res6_held && lu->res6_nexus == cmd->nexus->id) {
		lu->res6_held = false;
		lu->res6_nexus = 0;
	}
	scsi_cmd_complete(cmd, SENSE_OK);
}

/* ---------------------------------------------------- START STOP UNIT */

enum sense_reason spc_parse_start_stop(struct scsi_cmd *cmd)
{
	/* Accepted: the medium is not removable, LOEJ and power conditions are no-ops. */
	return SENSE_OK;
}

/* --------------------------------------- RSOC / RSTMF (MAINTENANCE IN) */

enum sense_reason spc_parse_rsoc(struct scsi_cmd *cmd)
{
	if ((cmd->cdb[2] & 0x07) > 3) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 2, 2);
	}
	return SENSE_OK;
}

enum sense_reason spc_parse_rstmf(struct scsi_cmd *cmd)
{
	if (get_be32(cmd->cdb + 6) < 4) {
		return scsi_field(cmd, SENSE_INVALID_FIELD_CDB, 6, -1); /* SPC-4 6.36 */
	}
	return SENSE_OK;
}

void spc_exec_rstmf(struct scsi_cmd *cmd)
{
	uint8_t b[16] = { 0 };
	bool repd = cmd->cdb[2] & 0x80;

	/* ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, TARGET RESET. */
	b[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02;
	if (repd) {
		b[3] = 0x0c;
	}
	scsi_cmd_complete(cmd, scsi_reply(cmd, b, repd ? 16 : 4, get_be32(cmd->cdb + 6)));
}
