/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `reload` command: what SIGHUP does, asked over the control socket,
 * with the error (file:line:col) or the new revision in the reply.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static int
cmd_reload(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
           struct mg_error *err)
{
	struct daemon *d = arg;
	const struct mg_ctl_peer *peer = mg_ctl_conn_peer(conn);
	struct mg_gateway_stats gs;
	int rc;

	(void)args;
	MG_INFO("reload requested over the control socket (pid %d, uid %u)", (int)peer->pid,
	        (unsigned)peer->uid);
	rc = daemon_reload(d, err);
	if (rc < 0)
		return rc;
	mg_gateway_stats(d->gw, &gs);
	*result = json_pack("{s:I, s:I}", "revision", (json_int_t)gs.revision, "ipcache_changes",
	                    (json_int_t)gs.last_reload_changes);
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"reload", "re-read the config and policies; swap atomically", true, cmd_reload, NULL},
};

const struct cmd_area cmd_area_reload = {"reload", cmds, MG_ARRAY_SIZE(cmds)};
