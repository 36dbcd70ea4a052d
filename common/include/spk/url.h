/* Absolute http:// and https:// URLs that the server itself requests (webhook endpoints of
 * practice systems): parsed strictly, I/O-free, so that what is registered is exactly what is
 * delivered to and nothing of it can reach a request line or header it was not meant for. */
#ifndef SPK_URL_H
#define SPK_URL_H

#include <stdbool.h>
#include <stddef.h>

#define SPK_URL_HOST_MAX 253 /* a DNS name */
#define SPK_URL_PATH_MAX 511

typedef struct {
    bool tls;                        /* https */
    char host[SPK_URL_HOST_MAX + 1]; /* a name or IPv4 address; an IPv6 address without [] */
    char port[6];                    /* "1".."65535", without leading zeros */
    char path[SPK_URL_PATH_MAX + 1]; /* from the first '/', with the query; "/" when empty */
} spk_url_t;

/* Parses s[0..len): "http" or "https" (any case) "://", a host (letters, digits, '-', '.', '_';
 * or "[" IPv6 "]": hex digits, ':', '.'), optionally ":" port (1..65535), then a path and query
 * of visible ASCII (0x21..0x7E). A fragment ("#...") is dropped. Refused (SPK_EINVAL): user
 * information ('@' before the path), an empty host or port, a port out of range, a space,
 * a control or non-ASCII byte anywhere, a host or path longer than the limits above. */
int spk_url_parse(const char *s, size_t len, spk_url_t *u);
/* The URL written out: "<scheme>://<host or [v6]>:<port><path>". 0, or SPK_ERANGE when cap is
 * too small. Parses back to the same spk_url_t. */
int spk_url_format(const spk_url_t *u, char *out, size_t cap);
/* True when the host is written as a loopback address: "localhost", 127.0.0.0/8 dotted quad or
 * "::1". (The address a name resolves to is checked again when connecting.) */
bool spk_url_host_loopback(const spk_url_t *u);

/* "HOST:PORT" or "[IPV6]:PORT" (a listen address, a relay node): the host (without []) into
 * host[host_cap] and the port (0..65535) into *port. SPK_EINVAL for anything else: no port, an
 * empty or too long host, a bare IPv6 address, a port that is not all digits or out of range. */
int spk_hostport_parse(const char *s, char *host, size_t host_cap, int *port);

#endif
