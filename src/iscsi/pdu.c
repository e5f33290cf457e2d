/*
 * pdu.c - PDU framing (RFC 7143 11.2): the receive state machine.
 *
 *   BHS(48) --> AHS(TotalAHSLength*4) --> [header digest] --header()-->
 *   data(DataSegmentLength) --> pad(0-3) --> [data digest] --pdu()--> BHS
 *
 * Each state collects exactly the bytes of its field and resumes on the next
 * call after a short read; nothing blocks. Every length taken from the wire
 * is checked (DataSegmentLength against max_data_len) before any byte of the
 * field is stored. The header digest covers BHS + AHS, the data digest data
 * + padding (RFC 7143 13.1), both CRC32C sent least significant byte first.
 */
#include <errno.h>
#include <string.h>

#include "iscsi_internal.h"

void iscsi_rx_init(struct iscsi_rx *rx, uint32_t max_data_len)
{
	memset(rx, 0, sizeof(*rx));
	rx->state = ISCSI_RX_BHS;
	rx->max_data_len = max_data_len;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Start collecting the field of state `to`. */
static void rx_next(struct iscsi_rx *rx, enum iscsi_rx_state to)
{
	rx->got = 0;
	rx->state = to;
}

static int rx_header_done(struct iscsi_rx *rx, const struct iscsi_rx_ops *ops, void *arg)
{
	int rc;

	rx->data = NULL;
	rx->crc = 0;
	rx->data_digest_bad = false;
	rc = ops->header(arg, rx);
	if (rc < 0) {
		return rc;
	}
	if (rx->data_len > 0) {
		rx_next(rx, ISCSI_RX_DATA);
	} else {
		rx_next(rx, ISCSI_RX_BHS);
		return ops->pdu(arg, rx);
	}
	return 0;
}

static int rx_data_done(struct iscsi_rx *rx, const struct iscsi_rx_ops *ops, void *arg)
{
	if (ISCSI_PAD(rx->data_len)) {
		rx_next(rx, ISCSI_RX_PAD);
		return 0;
	}
	if (rx->data_digest) {
		rx_next(rx, ISCSI_RX_DDIGEST);
		return 0;
	}
	rx_next(rx, ISCSI_RX_BHS);
	return ops->pdu(arg, rx);
}

static int rx_bhs_done(struct iscsi_rx *rx, const struct iscsi_rx_ops *ops, void *arg)
{
	rx->ahs_len = (uint32_t)rx->bhs[ISCSI_BHS_AHS_LEN] * 4;
	rx->data_len = iscsi_bhs_data_len(rx->bhs);
	if (rx->data_len > rx->max_data_len) {
		return -EMSGSIZE;
	}
	if (rx->ahs_len) {
		rx_next(rx, ISCSI_RX_AHS);
		return 0;
	}
	if (rx->header_digest) {
		rx_next(rx, ISCSI_RX_HDIGEST);
		return 0;
	}
	return rx_header_done(rx, ops, arg);
}

/* Copy into a fixed field; returns bytes taken. */
static size_t take(uint8_t *field, uint32_t field_len, uint32_t *got, const uint8_t *buf,
		   size_t len)
{
	size_t n = field_len - *got;

	if (n > len) {
		n = len;
	}
	memcpy(field + *got, buf, n);
	*got += (uint32_t)n;
	return n;
}

static int rx_data_account(struct iscsi_rx *rx, const uint8_t *src, size_t n,
			   const struct iscsi_rx_ops *ops, void *arg)
{
	if (rx->data_digest) {
		rx->crc = crc32c(rx->crc, src, n);
	}
	rx->got += (uint32_t)n;
	if (rx->got == rx->data_len) {
		return rx_data_done(rx, ops, arg);
	}
	return 0;
}

long iscsi_rx_feed(struct iscsi_rx *rx, const uint8_t *buf, size_t len,
		   const struct iscsi_rx_ops *ops, void *arg, const bool *stop)
{
	size_t off = 0;
	int rc = 0;

	while (off < len && !(stop && *stop)) {
		const uint8_t *p = buf + off;
		size_t avail = len - off;
		size_t n;

		switch (rx->state) {
		case ISCSI_RX_BHS:
			n = take(rx->bhs, ISCSI_BHS_LEN, &rx->got, p, avail);
			off += n;
			if (rx->got == ISCSI_BHS_LEN) {
				rc = rx_bhs_done(rx, ops, arg);
			}
			break;
		case ISCSI_RX_AHS:
			n = take(rx->ahs, rx->ahs_len, &rx->got, p, avail);
			off += n;
			if (rx->got == rx->ahs_len) {
				if (rx->header_digest) {
					rx_next(rx, ISCSI_RX_HDIGEST);
				} else {
					rc = rx_header_done(rx, ops, arg);
				}
			}
			break;
		case ISCSI_RX_HDIGEST:
			n = take(rx->digest, ISCSI_DIGEST_LEN, &rx->got, p, avail);
			off += n;
			if (rx->got == ISCSI_DIGEST_LEN) {
				uint32_t crc = crc32c(0, rx->bhs, ISCSI_BHS_LEN);
				crc = crc32c(crc, rx->ahs, rx->ahs_len);
				if (crc != get_le32(rx->digest)) {
					/* RFC 7143 7.8: a header digest error can't be
					 * trusted to frame anything; at ERL 0 drop. */
					return -EBADMSG;
				}
				rc = rx_header_done(rx, ops, arg);
			}
			break;
		case ISCSI_RX_DATA:
			n = rx->data_len - rx->got;
			if (n > avail) {
				n = avail;
			}
			if (rx->data) {
				memcpy(rx->data + rx->got, p, n);
			}
			off += n;
			rc = rx_data_account(rx, p, n, ops, arg);
			break;
		case ISCSI_RX_PAD:
			n = take(rx->pad, ISCSI_PAD(rx->data_len), &rx->got, p, avail);
			if (rx->data_digest) {
				rx->crc = crc32c(rx->crc, p, n);
			}
			off += n;
			if (rx->got == ISCSI_PAD(rx->data_len)) {
				if (rx->data_digest) {
					rx_next(rx, ISCSI_RX_DDIGEST);
				} else {
					rx_next(rx, ISCSI_RX_BHS);
					rc = ops->pdu(arg, rx);
				}
			}
			break;
		case ISCSI_RX_DDIGEST:
			n = take(rx->digest, ISCSI_DIGEST_LEN, &rx->got, p, avail);
			off += n;
			if (rx->got == ISCSI_DIGEST_LEN) {
				rx->data_digest_bad = rx->crc != get_le32(rx->digest);
				rx_next(rx, ISCSI_RX_BHS);
				rc = ops->pdu(arg, rx);
			}
			break;
		}
		if (rc < 0) {
			return rc;
		}
	}
	return (long)off;
}

size_t iscsi_rx_direct(const struct iscsi_rx *rx, uint8_t **dst)
{
	if (rx->state != ISCSI_RX_DATA || !rx->data) {
		return 0;
	}
	*dst = rx->data + rx->got;
	return rx->data_len - rx->got;
}

int iscsi_rx_direct_done(struct iscsi_rx *rx, size_t n, const struct iscsi_rx_ops *ops,
			 void *arg)
{
	return rx_data_account(rx, rx->data + rx->got, n, ops, arg);
}
