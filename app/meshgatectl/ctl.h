/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl's internal interfaces: the command table every subcommand
 * registers in, the output options they share, and the offline state the
 * --config commands build exactly as the daemon does.
 *
 * Exit codes are a contract scripts rely on (docs/cli.md): 0 success (a
 * trace that says "denied" is a success), 1 the input was checked and
 * found wrong (invalid policy, config that does not load), or the daemon
 * cannot be reached, refused or failed the request; 2 usage error
 * (unknown option, bad address, bad protocol), 3 internal error (the
 * compiled tables and the trace disagree, a reply that is not the
 * protocol).
 */
#ifndef MG_MESHGATECTL_CTL_H
#define MG_MESHGATECTL_CTL_H

#include <jansson.h>
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
 * Commands that talk to the running daemon over its control socket set
 * @p daemon (`meshgatectl help` lists them apart).
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

/* ---- talking to the daemon (online.c) ---- */

#define CTL_DEFAULT_SOCKET "/run/meshgate/meshgate.sock"
/** How long a request may wait for its reply (a stream's first reply too). */
#define CTL_TIMEOUT_MS 10000

/** -o given before the command (`meshgatectl -o json status`); the commands' default. */
extern enum ctl_output ctl_default_output;
/** --socket given before the command, or NULL. */
extern const char *ctl_global_socket;

/** The socket to use: @p opt (the command's --socket), the global --socket,
 * $MESHGATE_SOCKET, or CTL_DEFAULT_SOCKET, in that order. */
const char *ctl_socket_path(const char *opt);

/**
 * Send @p command with @p args (borrowed) to the daemon at @p socket and
 * wait for the reply. On success *@p result is a new reference (json null
 * when the reply had none). On failure the message goes to stderr as
 * "meshgatectl CMD: message" and *@p result is NULL.
 * @return CTL_EXIT_OK, CTL_EXIT_FAIL (unreachable, refused, failed) or
 *   CTL_EXIT_INTERNAL (a reply that is not the protocol; EPROTO).
 */
int ctl_call(const char *cmd, const char *socket, const char *command, json_t *args,
             json_t **result);

/** Every online command but policy trace: argv[0] is its name ("identity get"). */
int ctl_online(int argc, char **argv);

/** Print a trace document (trace_json.h) as text: offline and online alike. */
void ctl_trace_print_text(const json_t *doc, FILE *out);

/** Print one monitor event as one line of text. */
void ctl_monitor_print_text(const json_t *ev, FILE *f);

/* ---- commands ---- */

int ctl_policy_validate(int argc, char **argv);
int ctl_policy_trace(int argc, char **argv);
int ctl_kv_import(int argc, char **argv);
int ctl_kv_put_ip(int argc, char **argv);
int ctl_kv_del_ip(int argc, char **argv);
int ctl_kv_put_identity(int argc, char **argv);
int ctl_kv_del_identity(int argc, char **argv);

#endif /* MG_MESHGATECTL_CTL_H */
