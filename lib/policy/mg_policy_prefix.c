/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * CIDR prefixes as policies name them: parsing (Cilium accepts a prefix
 * with host bits set and masks it, and a bare address as a host prefix),
 * containment for `except`, and Cilium's label form of a prefix
 * (pkg/labels/cidr.go): IPv6 colons become '-', with a '0' added where the
 * key would otherwise start or end with '-' ("::/0" -> "0--0/0",
 * "fd00::/64" -> "fd00--0/64"). The loader, the selectors and the CIDR
 * identities all go through these, so a rule's `cidr:` requirement and the
 * identity's `cidr:` labels are spelt alike by construction. Kept apart
 * from mg_policy_cidr.c so that the loader does not need the ipcache.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "policy_priv.h"

static void
mask_addr(uint8_t *addr, unsigned plen, unsigned bytes)
{
	unsigned i;

	for (i = 0; i < bytes; i++) {
		unsigned bit = i * 8;

		if (bit >= plen)
			addr[i] = 0;
		else if (plen - bit < 8)
			addr[i] &= (uint8_t)(0xff00u >> (plen - bit));
	}
}

int
pol_prefix_parse(const char *s, struct pol_prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned maxlen, plen;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		maxlen = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		maxlen = 128;
	} else {
		return -EINVAL;
	}
	plen = maxlen;
	if (slash != NULL) {
		const char *p = slash + 1;
		size_t n = strlen(p), i;

		/* decimal, no sign, no leading zero (as Go's netip.ParsePrefix) */
		if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
			return -EINVAL;
		plen = 0;
		for (i = 0; i < n; i++) {
			if (p[i] < '0' || p[i] > '9')
				return -EINVAL;
			plen = plen * 10 + (unsigned)(p[i] - '0');
		}
		if (plen > maxlen)
			return -EINVAL;
	}
	out->plen = (uint8_t)plen;
	mask_addr(out->addr, plen, maxlen / 8);
	return 0;
}

bool
pol_prefix_contains_addr(const struct pol_prefix *outer, const struct pol_prefix *inner)
{
	uint8_t a[16];

	if (outer->family != inner->family)
		return false;
	memcpy(a, inner->addr, sizeof(a));
	mask_addr(a, outer->plen, outer->family == AF_INET ? 4 : 16);
	return memcmp(a, outer->addr, outer->family == AF_INET ? 4 : 16) == 0;
}

void
pol_prefix_label(const struct pol_prefix *p, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	char tmp[INET6_ADDRSTRLEN * 2 + 8];
	size_t i, n, o = 0;

	inet_ntop(p->family == AF_INET ? AF_INET : AF_INET6, p->addr, a, sizeof(a));
	n = strlen(a);
	for (i = 0; i < n; i++) {
		if (a[i] != ':') {
			tmp[o++] = a[i];
			continue;
		}
		/* a label key neither starts nor ends with '-' */
		if (i == 0) {
			tmp[o++] = '0';
			tmp[o++] = '-';
		} else if (i == n - 1) {
			tmp[o++] = '-';
			tmp[o++] = '0';
		} else {
			tmp[o++] = '-';
		}
	}
	tmp[o] = '\0';
	snprintf(buf, size, "%s/%u", tmp, p->plen);
}

void
pol_prefix_truncate(const struct pol_prefix *p, unsigned plen, struct pol_prefix *out)
{
	*out = *p;
	if (plen < p->plen) {
		out->plen = (uint8_t)plen;
		mask_addr(out->addr, plen, p->family == AF_INET ? 4 : 16);
	}
}

int
pol_prefix_cmp(const struct pol_prefix *a, const struct pol_prefix *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->plen != b->plen)
		return a->plen < b->plen ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}
