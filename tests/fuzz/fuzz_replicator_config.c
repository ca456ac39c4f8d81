/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/replicator's configuration: every input goes
 * through both parsers of operator-supplied files, meshgate-replicator.yaml
 * (mg_rep_config_load_buf) and a remote cluster's etcd config as Cilium's
 * clustermesh secret mounts it (mg_rep_etcd_config_load, which reads a
 * path: the input is written to a memfd and read back through /proc).
 * Besides surviving any input under ASan/UBSan without a leak, a refused
 * input must come with an error message, and an accepted one must hold
 * only what the loaders promise: ids and values in range, between one and
 * MG_ETCD_MAX_ENDPOINTS endpoints, each an http(s):// URL with a port, of
 * one scheme, https only with a CA, a certificate only with its key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mg_etcd.h"
#include "mg_kvstore.h"
#include "mg_replicator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

static void
check_config(const struct mg_rep_config *c)
{
	CHECK(c->cluster_mode == MG_CLUSTER_MODE_255 || c->cluster_mode == MG_CLUSTER_MODE_511);
	CHECK(c->cluster_id >= 1 && c->cluster_id <= (unsigned)c->cluster_mode);
	CHECK(mg_kv_cluster_name_valid(c->cluster_name));
	CHECK(c->config_dir != NULL && c->config_dir[0] != '\0');
	CHECK(c->redis != NULL);
	CHECK(strncmp(c->redis, "redis://", 8) == 0 || strncmp(c->redis, "unix:///", 8) == 0);
	CHECK(c->page_size >= 1 && c->page_size <= 100000);
	CHECK(c->qps >= 0.1 && c->qps <= 1e6);
	CHECK(c->bootstrap_qps >= 0.1 && c->bootstrap_qps <= 1e6);
	CHECK(c->backoff_max_ms >= c->backoff_min_ms && c->backoff_max_ms >= 1);
	CHECK(c->timeout_ms >= 1000 && c->connect_timeout_ms >= 1000);
	CHECK(c->max_entries >= 1 && c->max_entries <= 100000000);
	CHECK(c->max_value_bytes >= 256 && c->max_value_bytes <= MG_KV_IDENTITY_VALUE_MAX);
	CHECK(c->queue_bytes >= (1u << 20));
	CHECK(c->lease_ttl_ms >= 3000);
	CHECK(c->batch >= 1 && c->batch <= MG_KV_BATCH_MAX);
	CHECK(c->log_maxlen >= 1000);
	CHECK(c->control_max_clients >= 1);
	CHECK(c->control_socket == NULL || strlen(c->control_socket) < 108);
}

static void
check_etcd(const struct mg_rep_etcd_config *e)
{
	bool tls = strncmp(e->endpoints[0], "https://", 8) == 0;

	CHECK(strcmp(e->name, "remote-1") == 0 && e->file != NULL);
	CHECK(e->n_endpoints >= 1 && e->n_endpoints <= MG_ETCD_MAX_ENDPOINTS);
	for (size_t i = 0; i < e->n_endpoints; i++) {
		const char *s = e->endpoints[i];
		bool https = strncmp(s, "https://", 8) == 0;

		CHECK(https || strncmp(s, "http://", 7) == 0);
		CHECK(https == tls);
		CHECK(strlen(s) > (https ? 8u : 7u));
		CHECK(strrchr(s, ':') > strchr(s, ':')); /* a port, given or added */
	}
	CHECK(!tls || e->ca_file != NULL);
	CHECK((e->cert_file == NULL) == (e->key_file == NULL));
	CHECK(e->ca_file == NULL || e->ca_file[0] != '\0');
}

/* The input as a file: a memfd, made once, rewritten for each input. */
static int
input_file(const uint8_t *data, size_t size, char *path, size_t len)
{
	static int fd = -1;

	if (fd < 0)
		fd = memfd_create("fuzz-etcd-config", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_error err = {{0}};
	struct mg_rep_etcd_config e;
	struct mg_rep_config *c;
	char path[64];
	int rc;

	mg_log_set_level(MG_LOG_ERR);

	c = mg_rep_config_load_buf("meshgate-replicator.yaml", "/etc/meshgate", data, size, &err);
	if (c != NULL)
		check_config(c);
	else
		CHECK(err.msg[0] != '\0');
	mg_rep_config_free(c);

	input_file(data, size, path, sizeof(path));
	err.msg[0] = '\0';
	rc = mg_rep_etcd_config_load(path, "remote-1", "/var/lib/cilium/clustermesh", &e, &err);
	CHECK(rc <= 1);
	if (rc == 1) {
		check_etcd(&e);
		mg_rep_etcd_config_clear(&e);
	} else {
		/* refused: an error said why; not a config: nothing held */
		CHECK(rc == 0 || err.msg[0] != '\0');
		CHECK(e.n_endpoints == 0 && e.endpoints == NULL && e.file == NULL);
	}
	return 0;
}
