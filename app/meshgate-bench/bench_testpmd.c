/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dpdk-testpmd io forwarding as the anchor of the forwarding benchmarks
 * (meshgate-bench forward and conntrack): run it on the given ports and
 * lcores and read its per-second rates.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_testpmd.h"

/* Run dpdk-testpmd io forwarding on ports @p vdev0 / @p vdev1 and return its
 * mean rx rate (frames/s) over @p secs one-second periods, counted from the
 * second period in which frames flowed (start-up of large pools and pcap
 * loading takes a few seconds and is not measured). */
double
bench_run_testpmd(const char *testpmd, const char *lcores, const char *vdev0, const char *vdev1,
                  unsigned secs)
{
	char cmd[2048], line[512];
	double pps_sum = 0, period = 0;
	unsigned flowing = 0, used = 0, ports_seen = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "timeout -s INT %u %s -l %s --no-huge -m 2048 --no-pci --file-prefix mgbench-tp "
	         "--log-level=lib.eal:error --vdev=%s --vdev=%s "
	         "-- --forward-mode=io --stats-period 1 --total-num-mbufs=262144 --nb-cores=1 2>&1 "
	         "</dev/null",
	         secs + 10, testpmd, lcores, vdev0, vdev1);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	/* Every period testpmd prints "Rx-pps: N" per port: sum the two ports. */
	while (fgets(line, sizeof(line), p) != NULL) {
		char *s = strstr(line, "Rx-pps:");

		if (s == NULL)
			continue;
		period += strtod(s + 7, NULL);
		if (++ports_seen < 2)
			continue;
		if (period > 0 && flowing++ > 0 && used < secs) {
			pps_sum += period;
			used++;
		}
		period = 0;
		ports_seen = 0;
	}
	pclose(p);
	return used > 0 ? pps_sum / used : -1;
}
