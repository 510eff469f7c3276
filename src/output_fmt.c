// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "output_fmt.h"

size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char b = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef)
		len = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		len = 4;
	else
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* inet_ntop formats IPv4 through sprintf (about 200 ns); the dotted quad is simple enough. */
size_t fmt_ipv4(char *buf, const uint8_t *a)
{
	size_t n = 0;
	int i;

	for (i = 0; i < 4; i++) {
		if (i)
			buf[n++] = '.';
		if (a[i] >= 100)
			buf[n++] = (char)('0' + a[i] / 100);
		if (a[i] >= 10)
			buf[n++] = (char)('0' + a[i] / 10 % 10);
		buf[n++] = (char)('0' + a[i] % 10);
	}
	return n;
}
