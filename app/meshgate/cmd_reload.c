/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `reload` command: what SIGHUP does, asked over the control socket,
 * with the error (file:line:col) or the new revision in the reply. The
 * reply comes when the reload is done; the reload reads and compiles on
 * its own thread, so the control socket answers other clients meanwhile.
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
	int rc;

	(void)args;
	(void)result;
	MG_INFO("reload requested over the control socket (pid %d, uid %u)", (int)peer->pid,
	        (unsigned)peer->uid);
	/* answered when the reload is done (daemon_reload_tick); the control
	 * thread goes on meanwhile. A failure to start answers now. */
	rc = daemon_reload_request(d, mg_ctl_conn_defer(conn), err);
	return rc == 0 ? MG_CTL_LATER : rc;
}

static const struct mg_ctl_command cmds[] = {
        {"reload", "re-read the config and policies; swap atomically", true, cmd_reload, NULL},
};

const struct cmd_area cmd_area_reload = {"reload", cmds, MG_ARRAY_SIZE(cmds)};
