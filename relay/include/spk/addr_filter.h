/* Which remote ICE candidate addresses the relay may send to. No I/O, no allocation.
 *
 * A client names the addresses the relay sends STUN checks (and then media) to. Unfiltered,
 * that lets anyone with a relay endpoint make the server send packets to its own loopback
 * services or its local network. The filter decides per address literal, in this order:
 *
 *   1. not an IPv4 or IPv6 literal (an mDNS ".local" name, a host name): refused — the relay
 *      never resolves names;
 *   2. in a configured deny range: refused;
 *   3. in a configured allow range: accepted;
 *   4. unspecified (0.0.0.0/8, ::), broadcast, multicast (224.0.0.0/4, ff00::/8), link-local
 *      (169.254.0.0/16, fe80::/10), reserved (240.0.0.0/4), IPv4-compatible/-translated forms
 *      other than the plain mapped one: refused;
 *   5. loopback (127.0.0.0/8, ::1): accepted only when it is one of the relay's own addresses
 *      (a relay listening on 127.0.0.1 in development and tests);
 *   6. private (10/8, 172.16/12, 192.168/16, 100.64/10 shared, fc00::/7 unique local):
 *      accepted only when the relay has an address of its own in one of these ranges (a
 *      relay on the practice's or hospital's network); otherwise refused;
 *   7. anything else (global unicast): accepted.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are judged as the IPv4 address. Ranges are CIDR
 * ("10.0.0.0/8", "2001:db8::/32", a bare address means /32 or /128) in a list separated by
 * commas or spaces. */
#ifndef SPK_ADDR_FILTER_H
#define SPK_ADDR_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPK_ADDR_FILTER_MAX_RANGES 16
#define SPK_ADDR_FILTER_MAX_LOCAL 8

/* An address or range; IPv4 is stored mapped into IPv6 (::ffff:0:0/96), bits counted on the
 * 128-bit form. */
typedef struct {
    uint8_t addr[16];
    uint8_t bits;
} spk_cidr_t;

typedef struct {
    spk_cidr_t allow[SPK_ADDR_FILTER_MAX_RANGES];
    spk_cidr_t deny[SPK_ADDR_FILTER_MAX_RANGES];
    spk_cidr_t local[SPK_ADDR_FILTER_MAX_LOCAL];
    uint8_t n_allow, n_deny, n_local;
    bool local_private; /* the relay has a private address of its own */
} spk_addr_filter_t;

/* Parses "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n" (host bits must be zero). Returns 0 or
 * SPK_EDECODE with a reason. */
int spk_cidr_parse(spk_cidr_t *out, const char *s, char *why, size_t why_len);

/* Parses an address literal into the 16-byte form (IPv4 mapped). Returns false when it is not
 * a literal. */
bool spk_addr_parse(const char *s, uint8_t out[16]);

/* Sets up a filter: the relay's own addresses (literals), and optional allow / deny lists
 * (NULL or "" for none). Returns 0, SPK_EDECODE (a bad address or range, with the reason) or
 * SPK_ETOOBIG (more than SPK_ADDR_FILTER_MAX_RANGES / _MAX_LOCAL). */
int spk_addr_filter_init(spk_addr_filter_t *f, const char *const *local, size_t n_local,
                         const char *allow, const char *deny, char *why, size_t why_len);

/* The decision for one address literal (rules above). */
bool spk_addr_filter_allows(const spk_addr_filter_t *f, const char *addr);

#endif
