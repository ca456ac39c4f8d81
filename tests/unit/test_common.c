/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/common's shared parsers: the one host:port parser that the config's
 * metrics.listen, the /metrics endpoint and the Redis URLs all use.
 */
#include <stdio.h>
#include <string.h>

#include "mg_common.h"
#include "mg_test.h"

static void
test_hostport_good(void)
{
	static const struct {
		const char *s;
		unsigned flags;
		const char *host;
		unsigned port;
		bool has_port, bracketed;
	} good[] = {
	        {"127.0.0.1:9470", 0, "127.0.0.1", 9470, true, false},
	        {"0.0.0.0:0", 0, "0.0.0.0", 0, true, false},
	        {"localhost:65535", 0, "localhost", 65535, true, false},
	        {":9100", 0, "", 9100, true, false},
	        {"[::1]:80", 0, "::1", 80, true, true},
	        {"[fd00::1]:65535", 0, "fd00::1", 65535, true, true},
	        {"[::ffff:10.0.0.1]:1", 0, "::ffff:10.0.0.1", 1, true, true},
	        {"redis.example:6379", MG_HOSTPORT_HOST_REQUIRED, "redis.example", 6379, true,
	         false},
	        {"redis", MG_HOSTPORT_PORT_OPTIONAL, "redis", 0, false, false},
	        {"[fe80::1]", MG_HOSTPORT_PORT_OPTIONAL, "fe80::1", 0, false, true},
	        {"h:007", 0, "h", 7, true, false},
	};
	struct mg_hostport hp;
	const char *why;
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(good); i++) {
		int rc = mg_hostport_parse(good[i].s, good[i].flags, &hp, &why);

		if (rc != 0)
			fprintf(stderr, "'%s': %s\n", good[i].s, why);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		CU_ASSERT_STRING_EQUAL(hp.host, good[i].host);
		CU_ASSERT_EQUAL(hp.port, good[i].port);
		CU_ASSERT_EQUAL(hp.has_port, good[i].has_port);
		CU_ASSERT_EQUAL(hp.bracketed, good[i].bracketed);
	}
}

static void
test_hostport_bad(void)
{
	static const struct {
		const char *s;
		unsigned flags;
		const char *why; /* a word of the reason */
	} bad[] = {
	        {"", 0, "empty"},
	        {"127.0.0.1", 0, "port"},
	        {"127.0.0.1:", 0, "port"},
	        {"127.0.0.1:65536", 0, "65535"},
	        {"127.0.0.1:99999999999999999999", 0, "65535"},
	        {"127.0.0.1:-1", 0, "port"},
	        {"127.0.0.1:+1", 0, "port"},
	        {"127.0.0.1: 1", 0, "port"},
	        {"127.0.0.1:9x", 0, "port"},
	        {"::1:9100", 0, "brackets"},
	        {"::1", MG_HOSTPORT_PORT_OPTIONAL, "brackets"},
	        {"[::1]9100", 0, "followed"},
	        {"[::1", 0, "']'"},
	        {"[]:80", 0, "IPv6"},
	        {"[zz]:80", 0, "IPv6"},
	        {"[10.0.0.1]:80", 0, "IPv6"},
	        {"a b:80", 0, "character"},
	        {"a\tb:80", 0, "character"},
	        {"user@h:80", 0, "character"},
	        {":80", MG_HOSTPORT_HOST_REQUIRED, "missing"},
	        {":", MG_HOSTPORT_PORT_OPTIONAL, "port"},
	        {"", MG_HOSTPORT_PORT_OPTIONAL, "empty"},
	};
	char longhost[400];
	struct mg_hostport hp;
	const char *why;
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		why = NULL;
		if (mg_hostport_parse(bad[i].s, bad[i].flags, &hp, &why) != -EINVAL)
			fprintf(stderr, "'%s' was accepted\n", bad[i].s);
		else if (why == NULL || strstr(why, bad[i].why) == NULL)
			fprintf(stderr, "'%s': %s\n", bad[i].s, why ? why : "(no reason)");
		CU_ASSERT_PTR_NOT_NULL_FATAL(why);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, bad[i].why));
	}
	CU_ASSERT_EQUAL(mg_hostport_parse(NULL, 0, &hp, &why), -EINVAL);
	/* a host of 255 bytes fits, 256 do not */
	memset(longhost, 'h', 255);
	strcpy(longhost + 255, ":1");
	CU_ASSERT_EQUAL(mg_hostport_parse(longhost, 0, &hp, &why), 0);
	CU_ASSERT_EQUAL(strlen(hp.host), 255);
	memset(longhost, 'h', 256);
	strcpy(longhost + 256, ":1");
	CU_ASSERT_EQUAL(mg_hostport_parse(longhost, 0, &hp, &why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "255"));
}

static CU_TestInfo tests[] = {
        {"hostport_good", test_hostport_good},
        {"hostport_bad", test_hostport_bad},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("common", tests)
