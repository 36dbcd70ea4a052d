/* Private to the transport: client addresses, without I/O.
 *
 * - addresses (IPv4, IPv6; an IPv4-mapped IPv6 address counts as IPv4) and CIDR lists (the
 *   trusted proxies);
 * - the client address a trusted reverse proxy puts in a header (X-Forwarded-For style lists or
 *   a single address);
 * - origins (RFC 6454: scheme, host, port) for the Origin check of a WebSocket upgrade.
 *
 * Parsers take peer data (header values) of any length and content; they never read past
 * `len` and fail with a negative SPK_E* code. tests/fuzz/fuzz_ws_addr.c exercises them. */
#ifndef SPK_WS_ADDR_H
#define SPK_WS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WS_ADDR_MAX_CIDRS 32
#define WS_ORIGIN_MAX 256 /* longest origin compared ("scheme://host:port") */

typedef struct {
    uint8_t family; /* 4 or 6 */
    uint8_t a[16];  /* IPv4 in the first 4 bytes */
} ws_ip_t;

typedef struct {
    ws_ip_t net;
    int prefix;
} ws_cidr_t;

typedef struct {
    ws_cidr_t v[WS_ADDR_MAX_CIDRS];
    int n;
} ws_cidr_list_t;

/* A numeric address of exactly len bytes ("192.0.2.1", "2001:db8::1"; IPv6 may be in
 * brackets; no port, no zone). 0 or SPK_EDECODE. */
int ws_ip_parse(const char *s, size_t len, ws_ip_t *out);
/* From a socket address (IPv4-mapped IPv6 becomes IPv4). 0 or SPK_EINVAL. */
int ws_ip_from_sockaddr(const struct sockaddr *sa, socklen_t len, ws_ip_t *out);
/* Text form into buf (at least 46 bytes). */
void ws_ip_format(const ws_ip_t *ip, char *buf, size_t cap);
/* The address with every bit after `prefix` cleared (prefix counts within the family). */
ws_ip_t ws_ip_masked(const ws_ip_t *ip, int prefix);
bool ws_ip_equal(const ws_ip_t *a, const ws_ip_t *b);

/* Comma-separated addresses or CIDRs ("10.0.0.0/8, ::1"). 0 or SPK_ECONFIG with `why`. */
int ws_cidr_list_parse(const char *s, ws_cidr_list_t *out, char *why, size_t why_len);
bool ws_cidr_list_match(const ws_cidr_list_t *l, const ws_ip_t *ip);

/* The client address in a proxy's header value: the entries are read from the right (the one
 * the nearest proxy added), trusted proxies are skipped, and the first other address is the
 * client; when every entry is a trusted proxy, the leftmost. Entries may carry a port
 * ("192.0.2.1:5000", "[2001:db8::1]:5000"). 0, or SPK_EDECODE when an entry read is not an
 * address (the request is then refused: the proxy is misconfigured or the header forged
 * before it). */
int ws_forwarded_client(const char *v, size_t len, const ws_cidr_list_t *trusted, ws_ip_t *out);

/* Normalises an origin ("https://Example.NL:443") to "scheme://host[:port]" in lower case with
 * the scheme's default port left out. Only http and https; no path, user info or query.
 * 0 or SPK_EDECODE. */
int ws_origin_normalize(const char *s, size_t len, char *out, size_t cap);
/* Normalises a "host[:port]" (a Host header) under the given scheme. 0 or SPK_EDECODE. */
int ws_origin_from_host(const char *scheme, const char *host, size_t len, char *out, size_t cap);

#endif
