/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Names of the drop reasons, generated from the X-macro in mg_drop.h so
 * the enum, metric labels and CLI strings can never drift apart.
 */
#include "mg_drop.h"

static const char *const labels[] = {
#define MG_DROP_LABEL(e, label, desc) [MG_DROP_##e] = label,
        MG_DROP_REASONS(MG_DROP_LABEL)
#undef MG_DROP_LABEL
};

static const char *const descs[] = {
#define MG_DROP_DESC(e, label, desc) [MG_DROP_##e] = desc,
        MG_DROP_REASONS(MG_DROP_DESC)
#undef MG_DROP_DESC
};

const char *
mg_drop_label(unsigned r)
{
	return r < MG_DROP__MAX ? labels[r] : "unknown";
}

const char *
mg_drop_desc(unsigned r)
{
	return r < MG_DROP__MAX ? descs[r] : "unknown drop reason";
}
