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

int
kvm_mask_len(const uint8_t *m, size_t n, uint8_t family, uint8_t *plen)
{
	unsigned ones = 0, max = family == 2 ? 32 : 128;
	bool zero = false;

	for (size_t i = 0; i < n * 8; i++) {
		bool bit = m[i / 8] & (0x80u >> (i % 8));

		if (bit && zero)
			return -EINVAL;
		if (bit)
			ones++;
		else
			zero = true;
	}
	if (ones > max)
		return -EINVAL;
	*plen = (uint8_t)ones;
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

/* ---- RFC 3339 times ---- */

/* @n digits at @s as a number, or -1. */
static int
kv_digits(const char *s, unsigned n)
{
	int v = 0;

	for (unsigned i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
kv_days(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int
mg_kv_time_parse(const char *s, size_t len, int64_t *unix_s)
{
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	size_t i = 19;

	if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return -EINVAL;
	y = kv_digits(s, 4);
	mo = kv_digits(s + 5, 2);
	d = kv_digits(s + 8, 2);
	h = kv_digits(s + 11, 2);
	mi = kv_digits(s + 14, 2);
	sec = kv_digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > (int)mdays[mo - 1] || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return -EINVAL;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -EINVAL;
	if (s[i] == '.') {
		size_t f = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return -EINVAL;
	}
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-') && len - i == 6 && s[i + 3] == ':') {
		sign = s[i] == '+' ? 1 : -1;
		oh = kv_digits(s + i + 1, 2);
		om = kv_digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -EINVAL;
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	*unix_s = kv_days(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	          sign * (oh * 3600 + om * 60);
	return 0;
}
