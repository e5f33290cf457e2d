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

static void s3os_quiesce(struct objstore *os)
{
	s3_client_quiesce(client_of(os));
}

static void s3os_destroy(struct objstore *os)
{
	if (!os) {
		return;
	}
	s3_client_destroy(client_of(os));
	free(os);
}

/* Label values are what operators grep for: the S3 verb and the HTTP status class. */
static const char *const g_req_type[S3_REQ_TYPES] = {
    [S3_REQ_GET] = "GET",
    [S3_REQ_PUT] = "PUT",
    [S3_REQ_DELETE] = "DELETE",
    [S3_REQ_LIST] = "LIST",
    [S3_REQ_DELETE_MULTI] = "DELETE_MULTI",
};
static const char *const g_status_class[S3_ST_CLASSES] = {
    [S3_ST_2XX] = "2xx", [S3_ST_3XX] = "3xx",	  [S3_ST_4XX] = "4xx",
    [S3_ST_5XX] = "5xx", [S3_ST_NET] = "network",
};

static void s3os_metrics(struct objstore *os, store_metric_fn fn, void *arg)
{
	struct s3_stats st;
	struct store_metric m = {0};

	s3_client_stats(client_of(os), &st);
	m.name = "s3tgt_s3_requests_total";
	m.help = "S3 request attempts, by request type and outcome (HTTP status class or network "
		 "error).";
	m.type = STORE_METRIC_COUNTER;
	m.nlabels = 2;
	m.label_name[0] = "type";
	m.label_name[1] = "status";
	for (unsigned t = 0; t < S3_REQ_TYPES; t++) {
		for (unsigned c = 0; c < S3_ST_CLASSES; c++) {
			m.label_value[0] = g_req_type[t];
			m.label_value[1] = g_status_class[c];
			m.value = st.requests[t][c];
			fn(arg, &m);
		}
	}
	m = (struct store_metric){
	    .name = "s3tgt_s3_retries_total",
	    .help = "S3 request attempts that were retried after a transient failure.",
	    .type = STORE_METRIC_COUNTER,
	    .value = st.retries,
	};
	fn(arg, &m);
	m = (struct store_metric){
	    .name = "s3tgt_s3_bytes_total",
	    .help = "Bytes of S3 request and response bodies, by direction.",
	    .type = STORE_METRIC_COUNTER,
	    .nlabels = 1,
	    .label_name = {"direction"},
	    .label_value = {"in"},
	    .value = st.bytes_in,
	};
	fn(arg, &m);
	m.label_value[0] = "out";
	m.value = st.bytes_out;
	fn(arg, &m);
	m = (struct store_metric){
	    .name = "s3tgt_s3_requests_in_flight",
	    .help = "S3 requests queued or running in the client.",
	    .type = STORE_METRIC_GAUGE,
	    .value = st.inflight,
	};
	fn(arg, &m);
}

static const struct objstore_ops s3_objstore_ops = {
    .name = "s3",
    .submit = s3os_submit,
    .list = s3os_list,
    .get_sync = s3os_get_sync,
    .put_sync = s3os_put_sync,
    .quiesce = s3os_quiesce,
    .destroy = s3os_destroy,
    .metrics = s3os_metrics,
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
