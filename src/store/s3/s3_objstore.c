/*
 * s3_objstore.c - struct objstore_ops for S3: the chunk logic's object back
 * end (src/store/chunk/objstore.h) mapped onto the curl-multi client.
 * submit() is asynchronous and completes on the creating reactor; list,
 * get_sync and put_sync block and are for open time only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "s3_internal.h"

static struct s3_client *client_of(struct objstore *os)
{
	return os->priv;
}

static int s3os_submit(struct objstore *os, struct obj_req *req)
{
	return s3_client_submit(client_of(os), req);
}

static int s3os_list(struct objstore *os, const char *prefix, obj_list_fn fn, void *arg)
{
	return s3_client_list(client_of(os), prefix, fn, arg, os->err, sizeof(os->err));
}

static int s3os_get_sync(struct objstore *os, struct obj_req *req)
{
	return s3_client_run_sync(client_of(os), req, os->err, sizeof(os->err));
}

static int s3os_put_sync(struct objstore *os, struct obj_req *req)
{
	return s3_client_run_sync(client_of(os), req, os->err, sizeof(os->err));
}

static void s3os_destroy(struct objstore *os)
{
	if (!os) {
		return;
	}
	s3_client_destroy(client_of(os));
	free(os);
}

static const struct objstore_ops s3_objstore_ops = {
	.name = "s3",
	.submit = s3os_submit,
	.list = s3os_list,
	.get_sync = s3os_get_sync,
	.put_sync = s3os_put_sync,
	.destroy = s3os_destroy,
};

int s3_objstore_create(const struct s3_config *cfg, struct reactor *r, struct objstore **out,
		       char *err, size_t errlen)
{
	struct objstore *os;
	struct s3_client *cl = NULL;
	int rc;

	*out = NULL;
	os = calloc(1, sizeof(*os));
	if (!os) {
		(void)snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = s3_client_create(cfg, r, &cl, err, errlen);
	if (rc < 0) {
		free(os);
		return rc;
	}
	os->ops = &s3_objstore_ops;
	os->priv = cl;
	*out = os;
	return 0;
}

void s3_objstore_stats(struct objstore *os, struct s3_stats *out)
{
	s3_client_stats(client_of(os), out);
}
