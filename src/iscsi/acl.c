/*
 * acl.c - per-target access lists: initiator names and source networks.
 * Also the iSCSI name syntax check (RFC 3720 3.2.6.3), which the ACL and the
 * management API share.
 *
 * Invariant: names are stored as given, compared with strcasecmp (RFC 3722
 * case-folds iSCSI names, so two spellings that differ in case are the same
 * initiator); networks are stored normalized (host bits zero) together with
 * their canonical text, so removal by any equivalent spelling works.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "s3tgt/core.h"
#include "s3tgt/iscsi.h"

#define ACL_CIDR_MAX (INET6_ADDRSTRLEN + 4)

struct acl_net {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct iscsi_acl {
	char **names;
	size_t nnames;
	char **net_text;
	struct acl_net *nets;
	size_t nnets;
};

static bool is_hex_run(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return s[n] == '\0';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
	       c == '.' || c == ':';
}

bool iscsi_name_is_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > ISCSI_NAME_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_name_char(name[i])) {
			return false;
		}
	}
	if (strncasecmp(name, "eui.", 4) == 0) {
		return len == 20 && is_hex_run(name + 4, 16);
	}
	if (strncasecmp(name, "naa.", 4) == 0) {
		return (len == 20 && is_hex_run(name + 4, 16)) ||
		       (len == 36 && is_hex_run(name + 4, 32));
	}
	if (strncasecmp(name, "iqn.", 4) != 0) {
		return false;
	}
	/* "iqn." yyyy "-" mm "." naming-authority (a reversed domain name). */
	const char *p = name + 4;
	if (len < 4 + 8 + 1 || !is_digit(p[0]) || !is_digit(p[1]) || !is_digit(p[2]) ||
	    !is_digit(p[3]) || p[4] != '-' || !is_digit(p[5]) || !is_digit(p[6]) || p[7] != '.') {
		return false;
	}
	int month = (p[5] - '0') * 10 + (p[6] - '0');
	if (month < 1 || month > 12) {
		return false;
	}
	p += 8;
	const char *end = strchr(p, ':');
	size_t alen = end ? (size_t)(end - p) : strlen(p);
	if (alen == 0 || p[0] == '.' || p[alen - 1] == '.' || p[0] == '-') {
		return false;
	}
	for (size_t i = 0; i < alen; i++) {
		if (p[i] == '.' && p[i + 1] == '.') {
			return false;
		}
	}
	return true;
}

int iscsi_acl_create(struct iscsi_acl **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void iscsi_acl_destroy(struct iscsi_acl *acl)
{
	if (!acl) {
		return;
	}
	for (size_t i = 0; i < acl->nnames; i++) {
		free(acl->names[i]);
	}
	for (size_t i = 0; i < acl->nnets; i++) {
		free(acl->net_text[i]);
	}
	free(acl->names);
	free(acl->net_text);
	free(acl->nets);
	free(acl);
}

int iscsi_acl_copy(const struct iscsi_acl *src, struct iscsi_acl **out)
{
	struct iscsi_acl *a;
	int rc = iscsi_acl_create(&a);

	if (rc) {
		return rc;
	}
	for (size_t i = 0; src && i < src->nnames && !rc; i++) {
		rc = iscsi_acl_add_initiator(a, src->names[i]);
	}
	for (size_t i = 0; src && i < src->nnets && !rc; i++) {
		rc = iscsi_acl_add_network(a, src->net_text[i]);
	}
	if (rc) {
		iscsi_acl_destroy(a);
		return rc;
	}
	*out = a;
	return 0;
}

static ssize_t find_name(const struct iscsi_acl *acl, const char *name)
{
	for (size_t i = 0; i < acl->nnames; i++) {
		if (strcasecmp(acl->names[i], name) == 0) {
			return (ssize_t)i;
		}
	}
	return -1;
}

int iscsi_acl_add_initiator(struct iscsi_acl *acl, const char *name)
{
	char **nn;
	char *copy;

	if (!iscsi_name_is_valid(name)) {
		return -EINVAL;
	}
	if (find_name(acl, name) >= 0) {
		return -EEXIST;
	}
	copy = strdup(name);
	if (!copy) {
		return -ENOMEM;
	}
	nn = realloc(acl->names, (acl->nnames + 1) * sizeof(*nn));
	if (!nn) {
		free(copy);
		return -ENOMEM;
	}
	nn[acl->nnames++] = copy;
	acl->names = nn;
	return 0;
}

int iscsi_acl_remove_initiator(struct iscsi_acl *acl, const char *name)
{
	ssize_t i = find_name(acl, name);

	if (i < 0) {
		return -ENOENT;
	}
	free(acl->names[i]);
	memmove(&acl->names[i], &acl->names[i + 1],
		(acl->nnames - (size_t)i - 1) * sizeof(*acl->names));
	acl->nnames--;
	return 0;
}

/* Parse "addr[/prefix]" into a normalized network and its canonical text. */
static int parse_cidr(const char *cidr, struct acl_net *net, char *text, size_t textlen)
{
	char buf[ACL_CIDR_MAX + 1];
	char addr_text[INET6_ADDRSTRLEN];
	const char *slash;
	unsigned maxbits;
	uint64_t prefix;
	size_t alen;

	slash = strchr(cidr, '/');
	alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
	if (alen == 0 || alen >= sizeof(buf)) {
		return -EINVAL;
	}
	memcpy(buf, cidr, alen);
	buf[alen] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		maxbits = 128;
	} else {
		return -EINVAL;
	}
	if (slash) {
		if (parse_u64(slash + 1, 0, maxbits, &prefix) < 0) {
			return -EINVAL;
		}
	} else {
		prefix = maxbits;
	}
	net->prefix = (unsigned)prefix;
	/* Host bits set usually means a typo ("10.1.2.3/8"): refuse rather than guess. */
	for (unsigned bit = net->prefix; bit < maxbits; bit++) {
		if (net->addr[bit / 8] & (0x80u >> (bit % 8))) {
			return -EINVAL;
		}
	}
	if (!inet_ntop(net->family, net->addr, addr_text, sizeof(addr_text))) {
		return -EINVAL;
	}
	if (snprintf(text, textlen, "%s/%u", addr_text, net->prefix) >= (int)textlen) {
		return -EINVAL;
	}
	return 0;
}

static ssize_t find_net(const struct iscsi_acl *acl, const char *text)
{
	for (size_t i = 0; i < acl->nnets; i++) {
		if (strcmp(acl->net_text[i], text) == 0) {
			return (ssize_t)i;
		}
	}
	return -1;
}

int iscsi_acl_add_network(struct iscsi_acl *acl, const char *cidr)
{
	char text[ACL_CIDR_MAX + 1];
	struct acl_net net, *nn;
	char **nt;
	char *copy;
	int rc = parse_cidr(cidr, &net, text, sizeof(text));

	if (rc) {
		return rc;
	}
	if (find_net(acl, text) >= 0) {
		return -EEXIST;
	}
	copy = strdup(text);
	if (!copy) {
		return -ENOMEM;
	}
	nn = realloc(acl->nets, (acl->nnets + 1) * sizeof(*nn));
	if (!nn) {
		free(copy);
		return -ENOMEM;
	}
	acl->nets = nn;
	nt = realloc(acl->net_text, (acl->nnets + 1) * sizeof(*nt));
	if (!nt) {
		free(copy);
		return -ENOMEM;
	}
	acl->net_text = nt;
	nn[acl->nnets] = net;
	nt[acl->nnets] = copy;
	acl->nnets++;
	return 0;
}

int iscsi_acl_remove_network(struct iscsi_acl *acl, const char *cidr)
{
	char text[ACL_CIDR_MAX + 1];
	struct acl_net net;
	ssize_t i;

	if (parse_cidr(cidr, &net, text, sizeof(text)) < 0) {
		return -EINVAL;
	}
	i = find_net(acl, text);
	if (i < 0) {
		return -ENOENT;
	}
	free(acl->net_text[i]);
	memmove(&acl->net_text[i], &acl->net_text[i + 1],
		(acl->nnets - (size_t)i - 1) * sizeof(*acl->net_text));
	memmove(&acl->nets[i], &acl->nets[i + 1], (acl->nnets - (size_t)i - 1) * sizeof(*acl->nets));
	acl->nnets--;
	return 0;
}

size_t iscsi_acl_initiators(const struct iscsi_acl *acl, const char *const **names)
{
	*names = acl ? (const char *const *)acl->names : NULL;
	return acl ? acl->nnames : 0;
}

size_t iscsi_acl_networks(const struct iscsi_acl *acl, const char *const **cidrs)
{
	*cidrs = acl ? (const char *const *)acl->net_text : NULL;
	return acl ? acl->nnets : 0;
}

bool iscsi_acl_is_open(const struct iscsi_acl *acl)
{
	return !acl || (acl->nnames == 0 && acl->nnets == 0);
}

static bool net_matches(const struct acl_net *net, int family, const uint8_t *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != family) {
		return false;
	}
	if (memcmp(net->addr, addr, full) != 0) {
		return false;
	}
	if (rest == 0) {
		return true;
	}
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

static bool peer_allowed(const struct iscsi_acl *acl, const struct sockaddr *peer)
{
	uint8_t addr[16];
	int family;

	if (!peer) {
		return false;
	}
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)peer;
		memcpy(addr, &sin->sin_addr, 4);
		family = AF_INET;
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)peer;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			/* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d. */
			memcpy(addr, sin6->sin6_addr.s6_addr + 12, 4);
			family = AF_INET;
		} else {
			memcpy(addr, &sin6->sin6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < acl->nnets; i++) {
		if (net_matches(&acl->nets[i], family, addr)) {
			return true;
		}
	}
	return false;
}

bool iscsi_acl_allows(const struct iscsi_acl *acl, const char *initiator,
		      const struct sockaddr *peer)
{
	if (iscsi_acl_is_open(acl)) {
		return true;
	}
	if (acl->nnames && (!initiator || find_name(acl, initiator) < 0)) {
		return false;
	}
	if (acl->nnets && !peer_allowed(acl, peer)) {
		return false;
	}
	return true;
}
