/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Building blocks of the value codecs: base64 as Go's encoding/json writes
 * a []byte (RFC 4648, padded), the protocol names of named ports, and
 * strict JSON loading with typed, range-checked integer fields. Each
 * refuses what Cilium's Go decoder would refuse, with a message that names
 * the field.
 */
#include <errno.h>
#include <string.h>

#include "kv_model_priv.h"

/* ---- base64 (RFC 4648, with padding: Go's encoding/json for []byte) ---- */

static const char b64_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
kvm_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alpha[v >> 18 & 63];
		out[o++] = b64_alpha[v >> 12 & 63];
		out[o++] = b64_alpha[v >> 6 & 63];
		out[o++] = b64_alpha[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64_alpha[v >> 18 & 63];
		out[o++] = b64_alpha[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64_alpha[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int
kv_b64_val(char c)
{
	const char *p = c ? strchr(b64_alpha, c) : NULL;
	return p ? (int)(p - b64_alpha) : -1;
}

/* Decode padded base64 into out (at most cap bytes). Length or -EINVAL. */
int
kvm_b64_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), o = 0;

	if (n % 4 != 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i += 4) {
		int a = kv_b64_val(s[i]), b = kv_b64_val(s[i + 1]);
		int c = kv_b64_val(s[i + 2]), d = kv_b64_val(s[i + 3]);
		bool last = i + 4 == n;
		uint32_t v;

		if (a < 0 || b < 0)
			return -EINVAL;
		if (c < 0 && !(last && s[i + 2] == '=' && s[i + 3] == '='))
			return -EINVAL;
		if (d < 0 && !(last && s[i + 3] == '='))
			return -EINVAL;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
		    (uint32_t)(d < 0 ? 0 : d);
		if (o + (c < 0 ? 1 : d < 0 ? 2 : 3) > cap)
			return -EINVAL;
		out[o++] = (uint8_t)(v >> 16);
		if (c >= 0)
			out[o++] = (uint8_t)(v >> 8);
		if (d >= 0)
			out[o++] = (uint8_t)v;
	}
	return (int)o;
}

/* ---- protocols of named ports ---- */

const char *
mg_kv_proto_name(uint8_t proto)
{
	switch (proto) {
	case 6:
		return "TCP";
	case 17:
		return "UDP";
	case 132:
		return "SCTP";
	default:
		return NULL;
	}
}

int
mg_kv_proto_parse(const char *s, uint8_t *proto)
{
	if (strcasecmp(s, "TCP") == 0)
		*proto = 6;
	else if (strcasecmp(s, "UDP") == 0)
		*proto = 17;
	else if (strcasecmp(s, "SCTP") == 0)
		*proto = 132;
	else
		return -EINVAL;
	return 0;
}

/* ---- strict JSON ---- */

/* Load JSON text strictly: one value, an object, no duplicate keys. */
json_t *
kvm_load_object(const char *what, const char *text, size_t len, struct mg_error *err)
{
	json_error_t je;
	json_t *o;

	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL) {
		mg_error_set(err, NULL, 0, 0, "%s: invalid JSON at line %d column %d: %s", what,
		             je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		mg_error_set(err, NULL, 0, 0, "%s: expected a JSON object", what);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Integer field in [min, max]. */
int
kvm_get_int(json_t *o, const char *what, const char *field, json_int_t min, json_int_t max,
            bool required, json_int_t *out, struct mg_error *err)
{
	json_t *v = json_object_get(o, field);

	if (v == NULL) {
		if (!required)
			return 0;
		mg_error_set(err, NULL, 0, 0, "%s: missing \"%s\"", what, field);
		return -EINVAL;
	}
	if (!json_is_integer(v)) {
		mg_error_set(err, NULL, 0, 0, "%s: \"%s\" must be an integer", what, field);
		return -EINVAL;
	}
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		mg_error_set(err, NULL, 0, 0, "%s: \"%s\" %lld out of range %lld-%lld", what, field,
		             (long long)json_integer_value(v), (long long)min, (long long)max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}
