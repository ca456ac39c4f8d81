/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Corpus replay for libFuzzer targets, so that every fuzz target's corpus
 * (seeds and past crashers) runs in the normal test suite, with gcc and
 * under ASan/UBSan, without libFuzzer. Linked with one fuzz_<name>.c, it
 * feeds each file named on the command line, or each regular file of each
 * directory named (sorted, one level deep), to LLVMFuzzerTestOneInput. Each
 * input gets its own exactly sized heap buffer, so a sanitizer sees any
 * read past its end. A crash or a broken invariant kills the program; on
 * success it prints "PASS: fuzz/<name>_corpus (N inputs)" for the suite
 * runner. The name comes from -DMG_FUZZ_NAME="..." or from "-n <name>".
 * No input at all is a failure: a wrong corpus path must not pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef MG_FUZZ_NAME
#define MG_FUZZ_NAME "fuzz"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *name = MG_FUZZ_NAME;

/* Replays one file; returns 0, or -1 when it cannot be read. */
static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	struct stat st;
	size_t n;

	if (fp == NULL || fstat(fileno(fp), &st) != 0)
		goto err;
	/* Exactly the input's size (1 for an empty one, which is never read). */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (buf == NULL)
		goto err;
	n = fread(buf, 1, (size_t)st.st_size, fp);
	if (n != (size_t)st.st_size || ferror(fp))
		goto err;
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
err:
	fprintf(stderr, "FAIL: fuzz/%s_corpus: %s: %s\n", name, path, strerror(errno));
	free(buf);
	if (fp)
		fclose(fp);
	return -1;
}

/* Replays each regular file of @p dir in name order; returns the count or -1. */
static long
run_dir(const char *dir)
{
	struct dirent **ents = NULL;
	long count = 0;
	int n, i;

	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "FAIL: fuzz/%s_corpus: %s: %s\n", name, dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (ents[i]->d_name[0] == '.')
			goto next;
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			goto next;
		if (run_file(path) != 0)
			count = -1;
		else if (count >= 0)
			count++;
	next:
		free(ents[i]);
	}
	free(ents);
	return count;
}

int
main(int argc, char **argv)
{
	long total = 0;
	int i, bad = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		struct stat st;
		long n;

		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			name = argv[++i];
			continue;
		}
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "FAIL: fuzz/%s_corpus: %s: %s\n", name, argv[i],
			        strerror(errno));
			bad = 1;
			continue;
		}
		n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) ? -1 : 1);
		if (n < 0)
			bad = 1;
		else
			total += n;
	}
	if (bad || total == 0) {
		printf("FAIL: fuzz/%s_corpus: %s\n", name,
		       bad ? "unreadable input" : "no inputs to replay");
		return 1;
	}
	printf("PASS: fuzz/%s_corpus (%ld inputs)\n", name, total);
	return 0;
}
