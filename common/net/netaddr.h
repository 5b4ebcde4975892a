/* Choosing the address parameter servers bind: a named interface, an IP, or an automatic pick. */
#ifndef PST_COMMON_NET_NETADDR_H
#define PST_COMMON_NET_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* Resolves cluster.interface into an IPv4 address string. spec is "auto", an interface name
 * ("eth0") or an address ("10.1.2.3"). With "auto", single_host picks loopback; otherwise the
 * first non-loopback IPv4 interface that is up. why (may be NULL) receives a short reason for
 * the log. */
int pst_netaddr_choose(const char *spec, bool single_host, char *ip, size_t ip_len, char *why,
                       size_t why_len, pst_err_t *err);

#endif
