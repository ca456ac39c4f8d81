/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frames the kernel dropped in front of a net_af_packet port (see
 * mg_dp_kstats.h). DPDK 22.11's af_packet driver reports no imissed: when
 * the worker falls behind and the socket's receive ring is full, the
 * kernel drops the frame and counts it in the socket's PACKET_STATISTICS
 * (tp_drops), which nothing else reads. The sockets are the driver's; this
 * file finds them among the process's descriptors by their interface.
 */
#include <dirent.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mg_dp_kstats.h"

unsigned
mg_dp_packet_socks(int ifindex, int *fds, unsigned max)
{
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	if (ifindex <= 0 || max == 0)
		return 0;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && n < max) {
		struct sockaddr_ll sll;
		socklen_t len = sizeof(int);
		int fd, domain = 0;
		char *end;

		fd = (int)strtol(e->d_name, &end, 10);
		if (*e->d_name == '\0' || *end != '\0' || fd == dirfd(d))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
		    domain != AF_PACKET)
			continue;
		len = sizeof(sll);
		memset(&sll, 0, sizeof(sll));
		if (getsockname(fd, (struct sockaddr *)&sll, &len) != 0 ||
		    sll.sll_ifindex != ifindex)
			continue;
		fds[n++] = fd;
	}
	closedir(d);
	return n;
}

uint64_t
mg_dp_packet_drops(const int *fds, unsigned n)
{
	uint64_t drops = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		struct tpacket_stats_v3 st;
		socklen_t len = sizeof(st);

		memset(&st, 0, sizeof(st));
		/* Reading resets the kernel's counters: the caller accumulates. */
		if (getsockopt(fds[i], SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
			drops += st.tp_drops;
	}
	return drops;
}
