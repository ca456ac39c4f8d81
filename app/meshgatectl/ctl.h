/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl's internal interfaces: the command table every subcommand
 * registers in, the output options they share, and the offline state the
 * --config commands build exactly as the daemon does.
 *
 * Exit codes are a contract scripts rely on (docs/cli.md): 0 success (a
 * trace that says "denied" is a success), 1 the input was checked and
 * found wrong (invalid policy, config that does not load), 2 usage error
 * (unknown option, bad address, bad protocol), 3 internal error (the
 * compiled tables and the trace disagree).
 */
#ifndef MG_CTL_H
#define MG_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mg_config.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_policy.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_INTERNAL 3

enum ctl_output {
	CTL_OUT_TEXT,
	CTL_OUT_JSON,
};

/**
 * One command: the words that name it ("policy", "trace"), its usage
 * line, a one-line summary for `meshgatectl help`, and its entry point.
 * @p run gets argv starting at the command's first word (argv[0] is the
 * command's full name for messages) and returns the exit code.
 * Commands that talk to the running daemon set @p daemon (none yet).
 */
struct ctl_cmd {
	const char *words[3]; /**< NULL-terminated */
	const char *usage;
	const char *summary;
	int (*run)(int argc, char **argv);
	bool daemon;
};

/** Parse "-o FORMAT" values: "text"/"human" or "json". 0 or -EINVAL. */
int ctl_output_parse(const char *s, enum ctl_output *out);

/** Print a usage error for @p cmd to stderr and return CTL_EXIT_USAGE. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Print the usage of the command named @p name (words joined by ' ') to @p f. */
void ctl_print_usage(const char *name, FILE *f);

/* ---- commands ---- */

int ctl_policy_validate(int argc, char **argv);
int ctl_policy_trace(int argc, char **argv);
int ctl_kv_import(int argc, char **argv);
int ctl_kv_put_ip(int argc, char **argv);
int ctl_kv_del_ip(int argc, char **argv);
int ctl_kv_put_identity(int argc, char **argv);
int ctl_kv_del_identity(int argc, char **argv);

/* ---- offline state (offline.c) ---- */

/** What the daemon builds from its config, for offline commands. */
struct ctl_state {
	struct mg_config *cfg;
	struct mg_identity_table *ids;
	struct mg_policy_set *set;
	struct mg_ipcache *ipc;
	struct mg_cidr_ids *cidr;
	struct mg_policy *policy;
	struct mg_policy_params params;
};

/**
 * Load @p config_path and everything it names, as the daemon does: the
 * config, the policy sources, static identities and endpoints,
 * ipcache.entries, the CIDR identities the policies need; then compile.
 * @return 0, or a negative errno with @p err holding the message
 *   ("file:line:column: message" for input errors).
 */
int ctl_state_load(struct ctl_state *st, const char *config_path, struct mg_error *err);

/** Free everything @p st holds (a partly loaded state is fine). */
void ctl_state_free(struct ctl_state *st);

#endif /* MG_CTL_H */
