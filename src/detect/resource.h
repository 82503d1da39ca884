/* Resource checks: host CPU, memory and disk, and a service's RSS, CPU and
 * open fds, against thresholds that must hold for a while (`for`) before a
 * probe fails, so a spike is not a fault. Host metrics report host_wide
 * (impact system). The ops table is resource_detector (detect/kinds.h). */
#ifndef RECOVERD_DETECT_RESOURCE_H
#define RECOVERD_DETECT_RESOURCE_H

#include <stdint.h>

/* The kind's YAML keys, as written; parsed by validate and at each probe
 * (a handful of strtod calls), so nothing derived outlives a reload. At
 * least one threshold is required. A metric breaches when it is strictly
 * above its threshold. */
struct resource_params {
    char *rss;      /* service: resident memory, a size ("200MiB", "1G", bytes); NULL: none */
    char *cpu;      /* service: % of one CPU, "90%" or 90 ("250%": 2.5 CPUs); NULL: none */
    char *fds;      /* service: open file descriptors, a count; NULL: none */
    char *host_cpu; /* host: % of all CPUs busy, (0, 100]; NULL: none */
    char *memory;   /* host: % of memory in use, 1 - MemAvailable/MemTotal, (0, 100]; NULL: none */
    /* host: % of blocks used per mount, like df, as "MOUNT=PERCENT" strings,
     * at most 8; NULL: none. YAML: a list ["/=90%"] (CFG_ARGV) until cfgmap
     * reads mappings with any keys, then { "/": 90% }. */
    char **disk;
    uint64_t for_ms; /* ms above a threshold before the probe fails; default 0 */
};

/* Sizes: K/M/G/T, Ki/Mi/Gi/Ti and KiB/MiB/GiB/TiB are powers of 1024; KB/MB/GB/TB
 * (and kB) powers of 1000; "B" or no unit is bytes. 0 and *bytes, or -EINVAL. */
int resource_size_parse(const char *s, double *bytes);

#endif
