/*
 * fuzz_store_uri.c - LUN URI parsing (store_params_parse) and checking
 * (store_check_uri: the store's options, the layers' options and their
 * values, with the cache layer registered as the daemon does) on arbitrary
 * bytes. Checks the parser's own invariants besides memory safety: a
 * successful parse yields a valid block size, a size that is a multiple of
 * it, and no common option left in opts; a URI that checks also parses; a
 * failure always explains itself.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3tgt/cache.h"
#include "s3tgt/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_params p;
	char err[128];
	char *uri = malloc(size + 1);
	int rc;

	if (!uri) {
		return 0;
	}
	/* Registering again is a no-op, so every input sees the same stack. */
	assert(store_layer_register(&cache_layer_ops) == 0);
	memcpy(uri, data, size);
	uri[size] = '\0';
	rc = store_params_parse(uri, &p, err, sizeof(err));
	if (rc == 0) {
		assert(p.scheme && p.path);
		assert(p.block_size == 512 || p.block_size == 4096);
		assert(p.size % p.block_size == 0);
		for (size_t i = 0; i < p.nopts; i++) {
			assert(strcmp(p.opts[i].key, "size") != 0);
			assert(strcmp(p.opts[i].key, "block_size") != 0);
			assert(strcmp(p.opts[i].key, "thin") != 0);
			assert(store_param_get(&p, p.opts[i].key) != NULL);
		}
		store_params_fini(&p);
	} else {
		assert(rc < 0 && err[0] != '\0');
	}
	err[0] = '\0';
	if (store_check_uri(uri, err, sizeof(err)) == 0) {
		assert(rc == 0);
	} else {
		assert(err[0] != '\0');
	}
	free(uri);
	return 0;
}
