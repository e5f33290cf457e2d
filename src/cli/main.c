/*
 * main.c - s3tgt, the command-line client of the s3tgtd management API
 * (HTTP/JSON over the daemon's Unix socket, or TCP with a bearer token).
 * Tables for people by default, --json for scripts; exit status 0 on
 * success, 1 with a one-line error on failure, 2 for bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "s3tgt/core.h"

#define CLI_VERSION "0.1.0"
#define API_VERSION "v1"
#define DEFAULT_SOCKET "/run/s3tgt/s3tgtd.sock"
#define DEFAULT_TIMEOUT 30
#define ARGS_MAX 16

struct cli {
	const char *socket;
	const char *url; /* http://host:port for the TCP listener */
	const char *token;
	bool json;
	bool help;
	bool force;
	long timeout;
	const char *alias;
	const char *network;
	const char *mutual_user, *mutual_secret;
	const char *arg[ARGS_MAX];
	int nargs;
	char sockbuf[512];
};

struct buf {
	char *p;
	size_t len;
};

struct rsp {
	long status;
	json_t *body; /* NULL for empty or non-JSON bodies */
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("s3tgt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static const char *default_socket(struct cli *c)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (getenv("S3TGT_SOCKET")) {
		return getenv("S3TGT_SOCKET");
	}
	if (geteuid() != 0 && xdg && xdg[0] == '/' &&
	    snprintf(c->sockbuf, sizeof(c->sockbuf), "%s/s3tgt/s3tgtd.sock", xdg) <
		    (int)sizeof(c->sockbuf)) {
		return c->sockbuf;
	}
	return DEFAULT_SOCKET;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	char *np;

	if (b->len + add > 64 * 1024 * 1024) {
		return 0;
	}
	np = realloc(b->p, b->len + add + 1);
	if (!np) {
		return 0;
	}
	memcpy(np + b->len, data, add);
	b->p = np;
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

static const char *where(const struct cli *c)
{
	return c->url ? c->url : c->socket;
}

/* One request; dies on transport errors. body may be NULL. */
static struct rsp request(struct cli *c, const char *method, const char *path, json_t *body)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	struct buf b = { 0 };
	struct rsp r = { 0 };
	char url[2048], auth[1024];
	char *payload = NULL;
	CURLcode rc;

	if (!h) {
		die("out of memory");
	}
	snprintf(url, sizeof(url), "%s%s", c->url ? c->url : "http://localhost", path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (!c->url) {
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout < 5 ? c->timeout : 5L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		if (!payload) {
			die("out of memory");
		}
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	}
	if (c->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(h);
	if (payload) {
		explicit_bzero(payload, strlen(payload)); /* may carry CHAP secrets */
		free(payload);
	}
	curl_slist_free_all(hdrs);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
		die("cannot reach s3tgtd at %s (is it running? use --socket PATH)", where(c));
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		die("s3tgtd at %s did not answer within %ld s", where(c), c->timeout);
	}
	if (rc != CURLE_OK) {
		die("request to s3tgtd at %s failed: %s", where(c), curl_easy_strerror(rc));
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
	curl_easy_cleanup(h);
	if (b.len) {
		r.body = json_loadb(b.p, b.len, 0, NULL);
	}
	free(b.p);
	return r;
}

static void check_version(struct cli *c)
{
	struct rsp r = request(c, "GET", "/v1/version", NULL);
	const char *api = json_string_value(json_object_get(r.body, "api"));

	if (r.status == 401) {
		die("s3tgtd at %s wants a valid bearer token (--token or S3TGT_API_TOKEN)", where(c));
	}
	if (r.status != 200 || !api) {
		die("%s does not speak the s3tgtd management API %s (HTTP %ld)", where(c),
		    API_VERSION, r.status);
	}
	if (strcmp(api, API_VERSION) != 0) {
		die("s3tgtd at %s speaks API %s, this s3tgt speaks %s: use matching versions",
		    where(c), api, API_VERSION);
	}
	json_decref(r.body);
}

/* Print the result (or die with the server's message) for a change. */
static json_t *expect(struct cli *c, struct rsp r, long want)
{
	if (r.status != want && !(want == 200 && (r.status == 201 || r.status == 204))) {
		const char *msg = json_string_value(json_object_get(r.body, "error"));
		die("%s", msg ? msg : "unexpected answer from s3tgtd");
	}
	return r.body;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j ? j : json_object(), JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s) {
		puts(s);
	}
	free(s);
}

/* Done with a change: the JSON answer with --json, nothing (or msg) otherwise. */
static int finish(struct cli *c, json_t *j, const char *msg)
{
	if (c->json) {
		print_json(j);
	} else if (msg) {
		puts(msg);
	}
	json_decref(j);
	return 0;
}

static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);

	if (!e) {
		die("out of memory");
	}
	return e;
}

static void human_size(uint64_t v, char *out, size_t len)
{
	static const char *const u[] = { "B", "K", "M", "G", "T", "P" };
	int i = 0;
	double d = (double)v;

	while (d >= 1024 && i < 5 && ((uint64_t)d % 1024 == 0 || d >= 10240)) {
		d /= 1024;
		i++;
	}
	snprintf(out, len, d == (double)(uint64_t)d ? "%.0f%s" : "%.1f%s", d, u[i]);
}

static const char *str(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : "-";
}

static long long num(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* ---- help ---- */

struct cmd_help {
	const char *name;
	const char *usage;
	const char *text;
};

static const struct cmd_help helps[] = {
	{ "target create", "target create IQN [--alias NAME]", "Create an empty target." },
	{ "target delete", "target delete IQN [--force]",
	  "Delete a target; refused while initiators are logged in unless --force, which logs "
	  "them out first." },
	{ "target list", "target list", "List targets with their LUNs, sessions, ACL and CHAP." },
	{ "lun create", "lun create IQN LUN URI",
	  "Add LUN (0-16383) backed by URI, e.g. ram:?size=1G, file:/path?size=10G, "
	  "dir:/path?size=64G, s3://bucket/prefix?size=1T." },
	{ "lun delete", "lun delete IQN LUN [--force]",
	  "Remove a LUN; refused while in use unless --force." },
	{ "lun list", "lun list [IQN]", "List the LUNs of one target or of all targets." },
	{ "lun resize", "lun resize IQN LUN SIZE", "Grow a LUN to SIZE (bytes or K/M/G/T)." },
	{ "tpgt list", "tpgt list", "List target portal groups and their portals." },
	{ "session list", "session list",
	  "List sessions with initiator, address and negotiated parameters." },
	{ "session logout", "session logout ID", "Force the logout of one session." },
	{ "acl add", "acl add IQN INITIATOR | acl add IQN --network CIDR",
	  "Allow an initiator name (or a source network) into the target. A target with an "
	  "ACL is hidden from, and refuses logins by, everybody else." },
	{ "acl remove", "acl remove IQN INITIATOR | acl remove IQN --network CIDR",
	  "Remove an ACL entry; an empty ACL lets everyone in." },
	{ "acl list", "acl list IQN", "Show the initiators and networks allowed in." },
	{ "chap set", "chap set IQN USER SECRET [--mutual USER SECRET]",
	  "Require CHAP (RFC 7143 12.1.3) for logins; with --mutual the target also proves "
	  "itself. Secrets are 12 to 255 characters; '-' reads the secret from stdin. "
	  "Secrets are never shown again." },
	{ "chap clear", "chap clear IQN", "Stop requiring CHAP (AuthMethod=None)." },
	{ "version", "version", "Show the versions of s3tgt and of the daemon." },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: s3tgt [--socket PATH] [--json] [--timeout SECS] COMMAND ...\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		fprintf(f, "  s3tgt %s\n", helps[i].usage);
	}
	fprintf(f, "\noptions:\n"
		   "  --socket PATH   API socket of s3tgtd (default $S3TGT_SOCKET, "
		   "$XDG_RUNTIME_DIR/s3tgt/s3tgtd.sock\n"
		   "                  for non-root users, else " DEFAULT_SOCKET ")\n"
		   "  --url URL       talk to the TCP listener instead (http://HOST:PORT)\n"
		   "  --token TOKEN   bearer token for --url (default $S3TGT_API_TOKEN)\n"
		   "  --json          print the API's JSON instead of tables\n"
		   "  --timeout SECS  give up on a request after SECS (default %d)\n"
		   "  --help          help for any command: s3tgt lun create --help\n",
		DEFAULT_TIMEOUT);
}

static bool cmd_help(const struct cli *c, const char *name)
{
	if (!c->help) {
		return false;
	}
	for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		if (strcmp(helps[i].name, name) == 0) {
			printf("usage: s3tgt %s\n\n%s\n", helps[i].usage, helps[i].text);
			return true;
		}
	}
	usage(stdout);
	return true;
}

static void need_args(const struct cli *c, int n, const char *name)
{
	if (c->nargs != n) {
		for (size_t i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
			if (strcmp(helps[i].name, name) == 0) {
				fprintf(stderr, "s3tgt: usage: s3tgt %s\n", helps[i].usage);
				exit(2);
			}
		}
		exit(2);
	}
}

/* ---- commands ---- */

static int target_cmd(struct cli *c, const char *sub)
{
	char path[1024], name[32];
	json_t *j, *e;
	size_t i;

	snprintf(name, sizeof(name), "target %s", sub);
	if (cmd_help(c, name)) {
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		need_args(c, 2, name);
		check_version(c);
		j = expect(c, request(c, "GET", "/v1/targets", NULL), 200);
		if (c->json) {
			return finish(c, j, NULL);
		}
		printf("%-44s %5s %8s %-8s %-7s %s\n", "TARGET", "LUNS", "SESSIONS", "ACL", "CHAP",
		       "ALIAS");
		json_array_foreach(j, i, e) {
			json_t *acl = json_object_get(e, "acl"), *chap = json_object_get(e, "chap");
			size_t na = json_array_size(json_object_get(acl, "initiators")) +
				    json_array_size(json_object_get(acl, "networks"));
			char aclbuf[16];
			snprintf(aclbuf, sizeof(aclbuf), na ? "%zu" : "open", na);
			printf("%-44s %5zu %8lld %-8s %-7s %s\n", str(e, "name"),
			       json_array_size(json_object_get(e, "luns")), num(e, "sessions"),
			       aclbuf,
			       !json_is_true(json_object_get(chap, "enabled")) ? "none"
			       : json_is_true(json_object_get(chap, "mutual")) ? "mutual"
									: "one-way",
			       str(e, "alias"));
		}
		json_decref(j);
		return 0;
	}
	if (strcmp(sub, "create") == 0) {
		need_args(c, 3, name);
		check_version(c);
		json_t *b = json_pack("{s:s}", "name", c->arg[2]);
		if (c->alias) {
			json_object_set_new(b, "alias", json_string(c->alias));
		}
		j = expect(c, request(c, "POST", "/v1/targets", b), 201);
		json_decref(b);
		return finish(c, j, NULL);
	}
	if (strcmp(sub, "delete") == 0) {
		need_args(c, 3, name);
		check_version(c);
		char *e1 = escape(c->arg[2]);
		snprintf(path, sizeof(path), "/v1/targets/%s%s", e1, c->force ? "?force=true" : "");
		curl_free(e1);
		return finish(c, expect(c, request(c, "DELETE", path, NULL), 204), NULL);
	}
	fprintf(stderr, "s3tgt: unknown command 'target %s' (create, delete, list)\n", sub);
	return 2;
}

static void print_luns(json_t *j)
{
	size_t i;
	json_t *e;
	char sz[32];

	printf("%-44s %5s %8s %-6s %-6s %s\n", "TARGET", "LUN", "SIZE", "STORE", "STATE", "URI");
	json_array_foreach(j, i, e) {
		human_size((uint64_t)num(e, "size"), sz, sizeof(sz));
		/* fenced: another daemon took the volume; writes get WRITE PROTECTED */
		printf("%-44s %5lld %8s %-6s %-6s %s\n", str(e, "target"), num(e, "lun"), sz,
		       str(e, "store"),
		       json_is_true(json_object_get(e, "fenced")) ? "fenced" : "ok", str(e, "uri"));
	}
}

static int lun_cmd(struct cli *c, const char *sub)
{
	char path[1024], name[32];
	uint64_t lun = 0;
	json_t *j, *b;
	char *e1;

	snprintf(name, sizeof(name), "lun %s", sub);
	if (cmd_help(c, name)) {
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		if (c->nargs != 2 && c->nargs != 3) {
			need_args(c, -1, name);
		}
		check_version(c);
		if (c->nargs == 3) {
			e1 = escape(c->arg[2]);
			snprintf(path, sizeof(path), "/v1/targets/%s/luns", e1);
			curl_free(e1);
		} else {
			snprintf(path, sizeof(path), "/v1/luns");
		}
		j = expect(c, request(c, "GET", path, NULL), 200);
		if (!c->json) {
			print_luns(j);
			json_decref(j);
			return 0;
		}
		return finish(c, j, NULL);
	}
	if (strcmp(sub, "create") != 0 && strcmp(sub, "delete") != 0 &&
	    strcmp(sub, "resize") != 0) {
		fprintf(stderr, "s3tgt: unknown command 'lun %s' (create, delete, list, resize)\n",
			sub);
		return 2;
	}
	need_args(c, strcmp(sub, "delete") == 0 ? 4 : 5, name);
	if (parse_u64(c->arg[3], 0, 16383, &lun) < 0) {
		die("LUN must be an integer 0..16383, not '%s'", c->arg[3]);
	}
	check_version(c);
	e1 = escape(c->arg[2]);
	if (strcmp(sub, "create") == 0) {
		snprintf(path, sizeof(path), "/v1/targets/%s/luns", e1);
		b = json_pack("{s:I,s:s}", "lun", (json_int_t)lun, "uri", c->arg[4]);
		j = expect(c, request(c, "POST", path, b), 201);
	} else if (strcmp(sub, "delete") == 0) {
		snprintf(path, sizeof(path), "/v1/targets/%s/luns/%" PRIu64 "%s", e1, lun,
			 c->force ? "?force=true" : "");
		b = NULL;
		j = expect(c, request(c, "DELETE", path, NULL), 204);
	} else {
		snprintf(path, sizeof(path), "/v1/targets/%s/luns/%" PRIu64, e1, lun);
		b = json_pack("{s:s}", "size", c->arg[4]);
		j = expect(c, request(c, "PUT", path, b), 200);
	}
	curl_free(e1);
	json_decref(b);
	return finish(c, j, NULL);
}

static int tpgt_cmd(struct cli *c, const char *sub)
{
	json_t *j, *e, *p;
	size_t i, k;

	if (cmd_help(c, "tpgt list")) {
		return 0;
	}
	if (strcmp(sub, "list") != 0) {
		fprintf(stderr, "s3tgt: unknown command 'tpgt %s' (list)\n", sub);
		return 2;
	}
	need_args(c, 2, "tpgt list");
	check_version(c);
	j = expect(c, request(c, "GET", "/v1/portal_groups", NULL), 200);
	if (c->json) {
		return finish(c, j, NULL);
	}
	printf("%-5s %s\n", "TPGT", "PORTALS");
	json_array_foreach(j, i, e) {
		printf("%-5lld", num(e, "tpgt"));
		json_array_foreach(json_object_get(e, "portals"), k, p) {
			printf("%s%s", k ? ", " : " ", json_string_value(p));
		}
		putchar('\n');
	}
	json_decref(j);
	return 0;
}

static int session_cmd(struct cli *c, const char *sub)
{
	char path[256], name[32];
	json_t *j, *e, *p;
	size_t i;

	snprintf(name, sizeof(name), "session %s", sub);
	if (cmd_help(c, name)) {
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		need_args(c, 2, name);
		check_version(c);
		j = expect(c, request(c, "GET", "/v1/sessions", NULL), 200);
		if (c->json) {
			return finish(c, j, NULL);
		}
		printf("%-5s %-36s %-36s %-22s %-7s %s\n", "ID", "TARGET", "INITIATOR", "PEER",
		       "DIGESTS", "MAXRECV/BURST");
		json_array_foreach(j, i, e) {
			p = json_object_get(e, "params");
			printf("%-5lld %-36s %-36s %-22s %-7s %lld/%lld\n", num(e, "id"),
			       json_is_true(json_object_get(e, "discovery")) ? "(discovery)"
									    : str(e, "target"),
			       str(e, "initiator"), str(e, "peer"),
			       strcmp(str(p, "HeaderDigest"), "CRC32C") == 0 ||
					       strcmp(str(p, "DataDigest"), "CRC32C") == 0
				       ? "crc32c"
				       : "none",
			       num(p, "MaxRecvDataSegmentLength"), num(p, "MaxBurstLength"));
		}
		json_decref(j);
		return 0;
	}
	if (strcmp(sub, "logout") == 0) {
		uint64_t id;
		need_args(c, 3, name);
		if (parse_u64(c->arg[2], 0, UINT64_MAX, &id) < 0) {
			die("session ID must be a number, not '%s'", c->arg[2]);
		}
		check_version(c);
		snprintf(path, sizeof(path), "/v1/sessions/%" PRIu64, id);
		return finish(c, expect(c, request(c, "DELETE", path, NULL), 204), NULL);
	}
	fprintf(stderr, "s3tgt: unknown command 'session %s' (list, logout)\n", sub);
	return 2;
}

static int acl_cmd(struct cli *c, const char *sub)
{
	char path[1024], name[32];
	json_t *j, *b, *e;
	char *e1, *e2;
	size_t i;

	snprintf(name, sizeof(name), "acl %s", sub);
	if (cmd_help(c, name)) {
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		need_args(c, 3, name);
		check_version(c);
		e1 = escape(c->arg[2]);
		snprintf(path, sizeof(path), "/v1/targets/%s/acl", e1);
		curl_free(e1);
		j = expect(c, request(c, "GET", path, NULL), 200);
		if (c->json) {
			return finish(c, j, NULL);
		}
		if (!json_array_size(json_object_get(j, "initiators")) &&
		    !json_array_size(json_object_get(j, "networks"))) {
			puts("(no ACL: every initiator may log in)");
		}
		json_array_foreach(json_object_get(j, "initiators"), i, e) {
			printf("initiator %s\n", json_string_value(e));
		}
		json_array_foreach(json_object_get(j, "networks"), i, e) {
			printf("network   %s\n", json_string_value(e));
		}
		json_decref(j);
		return 0;
	}
	if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0) {
		fprintf(stderr, "s3tgt: unknown command 'acl %s' (add, remove, list)\n", sub);
		return 2;
	}
	need_args(c, c->network ? 3 : 4, name);
	check_version(c);
	e1 = escape(c->arg[2]);
	if (strcmp(sub, "add") == 0) {
		snprintf(path, sizeof(path), "/v1/targets/%s/acl/%s", e1,
			 c->network ? "networks" : "initiators");
		b = c->network ? json_pack("{s:s}", "cidr", c->network)
			       : json_pack("{s:s}", "name", c->arg[3]);
		j = expect(c, request(c, "POST", path, b), 201);
		json_decref(b);
	} else {
		e2 = escape(c->network ? c->network : c->arg[3]);
		if (c->network) {
			snprintf(path, sizeof(path), "/v1/targets/%s/acl/networks?cidr=%s", e1, e2);
		} else {
			snprintf(path, sizeof(path), "/v1/targets/%s/acl/initiators/%s", e1, e2);
		}
		curl_free(e2);
		j = expect(c, request(c, "DELETE", path, NULL), 200);
	}
	curl_free(e1);
	return finish(c, j, NULL);
}

/* "-" reads the secret from the first line of stdin (keeps it out of ps and history). */
static const char *secret_arg(const char *s, char *buf, size_t len)
{
	size_t n;

	if (strcmp(s, "-") != 0) {
		return s;
	}
	if (!fgets(buf, (int)len, stdin)) {
		die("no secret on stdin");
	}
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return buf;
}

static int chap_cmd(struct cli *c, const char *sub)
{
	char path[1024], name[32], s1[512], s2[512];
	json_t *j, *b;
	char *e1;

	snprintf(name, sizeof(name), "chap %s", sub);
	if (cmd_help(c, name)) {
		return 0;
	}
	if (strcmp(sub, "set") == 0) {
		need_args(c, 5, name);
		check_version(c);
		b = json_pack("{s:s,s:s}", "user", c->arg[3], "secret",
			      secret_arg(c->arg[4], s1, sizeof(s1)));
		if (c->mutual_user) {
			json_object_set_new(b, "mutual_user", json_string(c->mutual_user));
			json_object_set_new(b, "mutual_secret",
					    json_string(secret_arg(c->mutual_secret, s2,
								   sizeof(s2))));
		}
		explicit_bzero(s1, sizeof(s1));
		explicit_bzero(s2, sizeof(s2));
		e1 = escape(c->arg[2]);
		snprintf(path, sizeof(path), "/v1/targets/%s/chap", e1);
		curl_free(e1);
		j = expect(c, request(c, "PUT", path, b), 200);
		json_decref(b);
		return finish(c, j, NULL);
	}
	if (strcmp(sub, "clear") == 0) {
		need_args(c, 3, name);
		check_version(c);
		e1 = escape(c->arg[2]);
		snprintf(path, sizeof(path), "/v1/targets/%s/chap", e1);
		curl_free(e1);
		return finish(c, expect(c, request(c, "DELETE", path, NULL), 204), NULL);
	}
	fprintf(stderr, "s3tgt: unknown command 'chap %s' (set, clear)\n", sub);
	return 2;
}

static int version_cmd(struct cli *c)
{
	struct rsp r;

	if (cmd_help(c, "version")) {
		return 0;
	}
	need_args(c, 1, "version");
	r = request(c, "GET", "/v1/version", NULL);
	if (r.status != 200 || !json_object_get(r.body, "api")) {
		die("%s does not speak the s3tgtd management API %s (HTTP %ld)", where(c),
		    API_VERSION, r.status);
	}
	if (c->json) {
		return finish(c, r.body, NULL);
	}
	printf("s3tgt %s (API %s)\ns3tgtd %s (API %s)\n", CLI_VERSION, API_VERSION,
	       str(r.body, "version"), str(r.body, "api"));
	json_decref(r.body);
	return 0;
}

static void parse_args(struct cli *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_next = i + 1 < argc;
		if (strcmp(a, "--json") == 0) {
			c->json = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			c->help = true;
		} else if (strcmp(a, "--force") == 0) {
			c->force = true;
		} else if (strcmp(a, "--socket") == 0 && has_next) {
			c->socket = argv[++i];
		} else if (strcmp(a, "--url") == 0 && has_next) {
			c->url = argv[++i];
		} else if (strcmp(a, "--token") == 0 && has_next) {
			c->token = argv[++i];
		} else if (strcmp(a, "--alias") == 0 && has_next) {
			c->alias = argv[++i];
		} else if (strcmp(a, "--network") == 0 && has_next) {
			c->network = argv[++i];
		} else if (strcmp(a, "--timeout") == 0 && has_next) {
			uint64_t t;
			if (parse_u64(argv[++i], 1, 3600, &t) < 0) {
				fprintf(stderr, "s3tgt: --timeout: expected 1..3600 seconds\n");
				exit(2);
			}
			c->timeout = (long)t;
		} else if (strcmp(a, "--mutual") == 0 && i + 2 < argc) {
			c->mutual_user = argv[++i];
			c->mutual_secret = argv[++i];
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "s3tgt: unknown or incomplete option '%s' (see --help)\n", a);
			exit(2);
		} else if (c->nargs < ARGS_MAX) {
			c->arg[c->nargs++] = a;
		} else {
			fprintf(stderr, "s3tgt: too many arguments\n");
			exit(2);
		}
	}
}

int main(int argc, char **argv)
{
	struct cli c = { .timeout = DEFAULT_TIMEOUT };
	const char *cmd, *sub;
	int rc;

	parse_args(&c, argc, argv);
	if (!c.socket) {
		c.socket = default_socket(&c);
	}
	if (!c.token) {
		c.token = getenv("S3TGT_API_TOKEN");
	}
	if (!c.url) {
		c.token = NULL; /* the Unix socket is guarded by its file mode */
	}
	if (c.nargs == 0) {
		usage(c.help ? stdout : stderr);
		return c.help ? 0 : 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		die("cannot initialise libcurl");
	}
	cmd = c.arg[0];
	sub = c.nargs > 1 ? c.arg[1] : "";
	if (strcmp(cmd, "version") == 0) {
		rc = version_cmd(&c);
	} else if (c.nargs < 2 && !c.help) {
		fprintf(stderr, "s3tgt: '%s' needs a subcommand (see s3tgt --help)\n", cmd);
		rc = 2;
	} else if (strcmp(cmd, "target") == 0) {
		rc = target_cmd(&c, sub);
	} else if (strcmp(cmd, "lun") == 0) {
		rc = lun_cmd(&c, sub);
	} else if (strcmp(cmd, "tpgt") == 0) {
		rc = tpgt_cmd(&c, sub);
	} else if (strcmp(cmd, "session") == 0) {
		rc = session_cmd(&c, sub);
	} else if (strcmp(cmd, "acl") == 0) {
		rc = acl_cmd(&c, sub);
	} else if (strcmp(cmd, "chap") == 0) {
		rc = chap_cmd(&c, sub);
	} else {
		fprintf(stderr, "s3tgt: unknown command '%s' (see s3tgt --help)\n", cmd);
		rc = 2;
	}
	curl_global_cleanup();
	return rc;
}
