/* Interface and address selection for the servers' ZeroMQ sockets. */
#include "common/net/netaddr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static bool is_ipv4(const char *s)
{
    struct in_addr a;
    return inet_pton(AF_INET, s, &a) == 1;
}

/* First IPv4 of the interface named name, or of any up non-loopback interface if name is NULL. */
static int find_interface(const char *name, char *ip, size_t ip_len, char *found, size_t found_len)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0)
        return PST_EIO;
    int rc = PST_ENOTFOUND;
    for (struct ifaddrs *it = list; it && rc != PST_OK; it = it->ifa_next) {
        if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET)
            continue;
        if (name ? strcmp(it->ifa_name, name) != 0
                 : (!(it->ifa_flags & IFF_UP) || (it->ifa_flags & IFF_LOOPBACK)))
            continue;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)it->ifa_addr;
        if (inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)ip_len)) {
            snprintf(found, found_len, "%s", it->ifa_name);
            rc = PST_OK;
        }
    }
    freeifaddrs(list);
    return rc;
}

int pst_netaddr_choose(const char *spec, bool single_host, char *ip, size_t ip_len, char *why,
                       size_t why_len, pst_err_t *err)
{
    char found[64] = "", scratch[128];
    if (!why) {
        why = scratch;
        why_len = sizeof scratch;
    }
    if (is_ipv4(spec)) {
        snprintf(ip, ip_len, "%s", spec);
        snprintf(why, why_len, "cluster.interface is an address");
        return PST_OK;
    }
    if (strcmp(spec, "auto") != 0) {
        if (find_interface(spec, ip, ip_len, found, sizeof found) != PST_OK)
            return pst_err_set(err, PST_ENOTFOUND,
                               "cluster.interface: no IPv4 address on interface '%s'", spec);
        snprintf(why, why_len, "interface %s from cluster.interface", spec);
        return PST_OK;
    }
    if (single_host) {
        snprintf(ip, ip_len, "127.0.0.1");
        snprintf(why, why_len, "every rank runs on this host");
        return PST_OK;
    }
    if (find_interface(NULL, ip, ip_len, found, sizeof found) != PST_OK)
        return pst_err_set(err, PST_ENOTFOUND,
                           "cluster.interface: ranks span hosts but this host has no up IPv4 "
                           "interface besides loopback; name one with cluster.interface");
    snprintf(why, why_len, "first up interface %s (set cluster.interface to choose)", found);
    return PST_OK;
}
