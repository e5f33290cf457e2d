/*
 * creds.c - the AWS default credential chain, in the SDKs' order:
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
 *   2. shared files for AWS_PROFILE (default "default"): the credentials file
 *      (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, section [NAME]),
 *      then the config file (AWS_CONFIG_FILE or ~/.aws/config, section
 *      [profile NAME], or [default])
 *   3. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2)
 *      or AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN
 *   4. EC2 IMDSv2: PUT a session token, GET the role name, GET its
 *      credentials; only when nothing above matched, never when
 *      AWS_EC2_METADATA_DISABLED=true. 1 s timeouts so a non-EC2 host
 *      fails fast.
 *
 * The first source that is configured decides: a broken profile is an error,
 * not a reason to fall through to IMDS. Temporary credentials (3, 4) carry an
 * Expiration and are fetched again S3_CREDS_REFRESH_SLACK_S before it.
 * Secrets never reach a log message and are wiped when dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "s3_internal.h"

#define CREDS_FILE_MAX (1u << 20)
#define CREDS_HTTP_MAX (64u * 1024)
#define CREDS_HTTP_TIMEOUT_MS 1000L
#define CONTAINER_HOST "http://169.254.170.2"
#define IMDS_HOST "http://169.254.169.254"

void s3_creds_wipe(struct s3_creds *c)
{
	explicit_bzero(c, sizeof(*c));
}

bool s3_creds_need_refresh(const struct s3_creds *c, time_t now)
{
	return c->expiration != 0 && now + S3_CREDS_REFRESH_SLACK_S >= c->expiration;
}

static int copy_str(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen) {
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

/* ------------------------------------------------------------------ INI */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t')) {
		p++;
	}
	return p;
}

static const char *rtrim(const char *b, const char *e)
{
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
		e--;
	}
	return e;
}

int s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t outlen)
{
	bool in_section = false;
	size_t seclen = strlen(section), keylen = strlen(key);

	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		const char *p = skip_ws(line, end), *e = rtrim(p, end);

		if (p < e && *p == '[') {
			const char *c = memchr(p, ']', (size_t)(e - p));

			if (c) {
				const char *nb = skip_ws(p + 1, c), *ne = rtrim(nb, c);

				in_section = (size_t)(ne - nb) == seclen && memcmp(nb, section, seclen) == 0;
			} else {
				in_section = false;
			}
		} else if (in_section && p < e && *p != '#' && *p != ';') {
			const char *eq = memchr(p, '=', (size_t)(e - p));

			if (eq) {
				const char *ke = rtrim(p, eq), *vb = skip_ws(eq + 1, e);

				if ((size_t)(ke - p) == keylen && memcmp(p, key, keylen) == 0) {
					size_t vl = (size_t)(e - vb);

					if (vl >= outlen) {
						return -ENAMETOOLONG;
					}
					memcpy(out, vb, vl);
					out[vl] = '\0';
					return 0;
				}
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

/* Whole file into a new NUL-terminated buffer; -ENOENT when absent. */
static int read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;
	int rc = 0;

	if (!f) {
		return -errno;
	}
	buf = malloc(CREDS_FILE_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, CREDS_FILE_MAX, f);
	if (ferror(f)) {
		rc = -EIO;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
out:
	if (buf) {
		explicit_bzero(buf, CREDS_FILE_MAX + 1);
	}
	free(buf);
	fclose(f);
	return rc;
}

static void free_secret_text(char *t)
{
	if (t) {
		explicit_bzero(t, strlen(t));
		free(t);
	}
}

static int default_path(const char *env, const char *leaf, char *out, size_t outlen)
{
	const char *v = getenv(env), *home = getenv("HOME");
	int w;

	if (v && *v) {
		if (v[0] == '~' && v[1] == '/' && home) {
			w = snprintf(out, outlen, "%s%s", home, v + 1);
		} else {
			w = snprintf(out, outlen, "%s", v);
		}
	} else if (home && *home) {
		w = snprintf(out, outlen, "%s/.aws/%s", home, leaf);
	} else {
		return -ENOENT;
	}
	return (w < 0 || (size_t)w >= outlen) ? -ENAMETOOLONG : 0;
}

/*
 * Look the profile up in one file. Returns 0 (found keys), -ENOENT (file or
 * section/keys absent), or -EINVAL (section with only one of the two keys).
 */
static int from_file(const char *path, const char *section, struct s3_creds *out, char *err,
		     size_t errlen)
{
	char *text = NULL;
	int rc, rk, rs;

	rc = read_file(path, &text);
	if (rc < 0) {
		return rc == -ENOENT ? -ENOENT : rc;
	}
	rk = s3_ini_get(text, section, "aws_access_key_id", out->access_key,
			sizeof(out->access_key));
	rs = s3_ini_get(text, section, "aws_secret_access_key", out->secret_key,
			sizeof(out->secret_key));
	if (rk == -ENOENT && rs == -ENOENT) {
		rc = -ENOENT;
		goto out;
	}
	if (rk < 0 || rs < 0 || !out->access_key[0] || !out->secret_key[0]) {
		(void)snprintf(err, errlen, "%s: profile [%s] needs both aws_access_key_id and "
					    "aws_secret_access_key",
			       path, section);
		rc = -EINVAL;
		goto out;
	}
	rc = s3_ini_get(text, section, "aws_session_token", out->token, sizeof(out->token));
	if (rc == -ENOENT) {
		out->token[0] = '\0';
		rc = 0;
	}
out:
	free_secret_text(text);
	if (rc < 0) {
		s3_creds_wipe(out);
	}
	return rc;
}

static int from_profile(struct s3_creds *out, char *err, size_t errlen)
{
	const char *profile = getenv("AWS_PROFILE");
	char path[4096], section[256];
	int rc;

	if (!profile || !*profile) {
		profile = "default";
	}
	if (default_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", path, sizeof(path)) == 0) {
		rc = from_file(path, profile, out, err, errlen);
		if (rc != -ENOENT) {
			goto done;
		}
	}
	if (default_path("AWS_CONFIG_FILE", "config", path, sizeof(path)) == 0) {
		/* In the config file every profile but "default" is "[profile NAME]". */
		if (strcmp(profile, "default") == 0) {
			rc = from_file(path, "default", out, err, errlen);
		} else {
			if (snprintf(section, sizeof(section), "profile %s", profile) >=
			    (int)sizeof(section)) {
				return -ENAMETOOLONG;
			}
			rc = from_file(path, section, out, err, errlen);
		}
		if (rc != -ENOENT) {
			goto done;
		}
	}
	/* An explicitly chosen profile that exists nowhere is a configuration error. */
	if (getenv("AWS_PROFILE") && *getenv("AWS_PROFILE")) {
		(void)snprintf(err, errlen, "AWS_PROFILE=%s: no such profile in the shared "
					    "credentials or config file",
			       profile);
		return -EINVAL;
	}
	return -ENOENT;
done:
	if (rc == 0) {
		(void)snprintf(out->source, sizeof(out->source), "profile %.30s", profile);
	}
	return rc;
}

/* ----------------------------------------------------------------- JSON */

int s3_parse_iso8601(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	long off = 0;
	time_t t;

	if (!p) {
		return -EINVAL;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
		}
	}
	if (*p == '+' || *p == '-') {
		int hh, mm;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6) {
			return -EINVAL;
		}
		off = (hh * 3600L + mm * 60L) * (*p == '+' ? 1 : -1);
	} else if (strcmp(p, "Z") != 0) {
		return -EINVAL;
	}
	t = timegm(&tm);
	if (t == (time_t)-1) {
		return -EINVAL;
	}
	*out = t - off;
	return 0;
}

int s3_creds_parse_json(const char *json, size_t len, struct s3_creds *out)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *ak, *sk, *tok, *exp, *code;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!root || !json_is_object(root)) {
		goto out;
	}
	code = json_string_value(json_object_get(root, "Code"));
	if (code && strcmp(code, "Success") != 0) {
		goto out;
	}
	ak = json_string_value(json_object_get(root, "AccessKeyId"));
	sk = json_string_value(json_object_get(root, "SecretAccessKey"));
	tok = json_string_value(json_object_get(root, "Token"));
	exp = json_string_value(json_object_get(root, "Expiration"));
	if (!ak || !sk || !*ak || !*sk) {
		goto out;
	}
	if (copy_str(out->access_key, sizeof(out->access_key), ak) < 0 ||
	    copy_str(out->secret_key, sizeof(out->secret_key), sk) < 0 ||
	    copy_str(out->token, sizeof(out->token), tok ? tok : "") < 0) {
		goto out;
	}
	if (exp && s3_parse_iso8601(exp, &out->expiration) < 0) {
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		s3_creds_wipe(out);
	}
	/* jansson keeps its own copies of the secrets; they go with the tree. */
	json_decref(root);
	return rc;
}

/* ----------------------------------------------------------------- HTTP */

struct http_buf {
	char *data;
	size_t len;
};

static size_t http_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct http_buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n > CREDS_HTTP_MAX) {
		return 0;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Blocking metadata request, 1 s timeouts. Returns 0 (HTTP 200) or -EIO. */
static int http_fetch(const char *method, const char *url, const char *hdr1, const char *hdr2,
		      struct http_buf *b)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL, *t;
	long status = 0;
	int rc = -EIO;

	b->len = 0;
	b->data[0] = '\0';
	if (!c) {
		return -ENOMEM;
	}
	for (const char *hv = hdr1; hv; hv = (hv == hdr1) ? hdr2 : NULL) {
		t = curl_slist_append(h, hv);
		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		h = t;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CREDS_HTTP_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2 * CREDS_HTTP_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200) {
		rc = 0;
	}
out:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

static int from_container(struct s3_creds *out, struct http_buf *b, char *err, size_t errlen)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char url[2048], auth[4096 + 32] = "";
	int rc;

	if (rel && *rel) {
		if (snprintf(url, sizeof(url), "%s%s", CONTAINER_HOST, rel) >= (int)sizeof(url)) {
			return -ENAMETOOLONG;
		}
	} else if (full && *full) {
		if (copy_str(url, sizeof(url), full) < 0) {
			return -ENAMETOOLONG;
		}
		if (tok && *tok &&
		    snprintf(auth, sizeof(auth), "Authorization: %s", tok) >= (int)sizeof(auth)) {
			return -ENAMETOOLONG;
		}
	} else {
		return -ENOENT;
	}
	rc = http_fetch("GET", url, auth[0] ? auth : NULL, NULL, b);
	explicit_bzero(auth, sizeof(auth));
	if (rc == 0) {
		rc = s3_creds_parse_json(b->data, b->len, out);
	}
	if (rc < 0) {
		(void)snprintf(err, errlen, "container credentials endpoint %s failed", url);
		return -EIO;
	}
	(void)snprintf(out->source, sizeof(out->source), "container");
	return 0;
}

static int from_imds(struct s3_creds *out, struct http_buf *b, char *err, size_t errlen)
{
	char token_hdr[512], url[512], role[256];
	size_t rl;
	int rc;

	rc = http_fetch("PUT", IMDS_HOST "/latest/api/token",
			"X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL, b);
	if (rc < 0 || b->len == 0 ||
	    snprintf(token_hdr, sizeof(token_hdr), "X-aws-ec2-metadata-token: %s", b->data) >=
		    (int)sizeof(token_hdr)) {
		rc = -ENOENT;
		goto out;
	}
	rc = http_fetch("GET", IMDS_HOST "/latest/meta-data/iam/security-credentials/", token_hdr,
			NULL, b);
	if (rc < 0) {
		rc = -ENOENT;
		goto out;
	}
	/* The listing holds one role name per line; the instance has at most one. */
	rl = strcspn(b->data, "\r\n");
	if (rl == 0 || rl >= sizeof(role)) {
		rc = -ENOENT;
		goto out;
	}
	memcpy(role, b->data, rl);
	role[rl] = '\0';
	if (snprintf(url, sizeof(url), IMDS_HOST "/latest/meta-data/iam/security-credentials/%s",
		     role) >= (int)sizeof(url)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	rc = http_fetch("GET", url, token_hdr, NULL, b);
	if (rc == 0) {
		rc = s3_creds_parse_json(b->data, b->len, out);
	}
	if (rc < 0) {
		(void)snprintf(err, errlen, "EC2 instance metadata: role %s gave no credentials",
			       role);
		rc = -EIO;
		goto out;
	}
	(void)snprintf(out->source, sizeof(out->source), "imds");
out:
	explicit_bzero(token_hdr, sizeof(token_hdr));
	return rc;
}

static bool is_imds_disabled(void)
{
	const char *v = getenv("AWS_EC2_METADATA_DISABLED");

	return v && strcasecmp(v, "true") == 0;
}

int s3_creds_resolve(struct s3_creds *out, char *err, size_t errlen)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN");
	struct http_buf b = { 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	if ((ak && *ak) || (sk && *sk)) {
		if (!ak || !*ak || !sk || !*sk) {
			(void)snprintf(err, errlen, "set both AWS_ACCESS_KEY_ID and "
						    "AWS_SECRET_ACCESS_KEY, or neither");
			return -EINVAL;
		}
		if (copy_str(out->access_key, sizeof(out->access_key), ak) < 0 ||
		    copy_str(out->secret_key, sizeof(out->secret_key), sk) < 0 ||
		    copy_str(out->token, sizeof(out->token), tok ? tok : "") < 0) {
			s3_creds_wipe(out);
			(void)snprintf(err, errlen, "AWS credentials in the environment are too long");
			return -EINVAL;
		}
		(void)snprintf(out->source, sizeof(out->source), "environment");
		return 0;
	}
	rc = from_profile(out, err, errlen);
	if (rc != -ENOENT) {
		return rc;
	}
	b.data = malloc(CREDS_HTTP_MAX + 1);
	if (!b.data) {
		return -ENOMEM;
	}
	rc = from_container(out, &b, err, errlen);
	if (rc == -ENOENT) {
		if (is_imds_disabled()) {
			rc = -ENOENT;
		} else {
			rc = from_imds(out, &b, err, errlen);
		}
		if (rc == -ENOENT) {
			(void)snprintf(err, errlen,
				       "no AWS credentials: set AWS_ACCESS_KEY_ID/"
				       "AWS_SECRET_ACCESS_KEY, a profile in ~/.aws/credentials, "
				       "or run with an instance/container role");
		}
	}
	explicit_bzero(b.data, CREDS_HTTP_MAX + 1);
	free(b.data);
	return rc;
}
