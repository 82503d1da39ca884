/* bench/prober: the least a prober can do for bench/scale's probes, the
 * baseline of recoverd's CPU per probe. One kept-alive connection per
 * port; every interval a GET /health on each, all on a 10 ms grid like
 * recoverd's checks (the ports spread over the interval as recoverd's
 * start spreads them); one epoll_wait per wakeup, one write and one read
 * per probe, no timers, no bookkeeping past the answer's status line.
 * Usage: prober SECONDS INTERVAL_MS PORT...; after a second of warm-up,
 * prints "probes=N answered=A cpu_s=C user_share=U wall_s=W" for the SECONDS measured
 * (CPU from getrusage: user + system, as /proc's utime + stime). Exit 1 on
 * bad usage or a failed connect. Built by bench/scale (cc -O2). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GRID_MS 10

struct conn {
    int fd;
    long long due_ms; /* the next probe */
    int waiting;      /* a request is out */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* CPU seconds so far: user, and user + system. */
static double cpu_s(double *user)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    return *user + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "User-Agent: prober\r\nAccept: */*\r\n\r\n";
    if (argc < 4)
        return fprintf(stderr, "usage: prober SECONDS INTERVAL_MS PORT...\n"), 1;
    long long seconds = atoll(argv[1]), every = atoll(argv[2]);
    int n = argc - 3, ep = epoll_create1(0);
    struct conn *c = calloc((size_t)n, sizeof *c);
    long long t0 = now_ms();
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)atoi(argv[3 + i]))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c[i].fd, (struct sockaddr *)&a, sizeof a) < 0)
            return perror("connect"), 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        c[i].due_ms = t0 + every * i / n / GRID_MS * GRID_MS;
    }
    long long start = t0 + 1000, end = start + seconds * 1000, probes = 0, answered = 0;
    double cpu0 = 0, user0 = 0, user1;
    int measuring = 0, head = 0;
    char buf[4096];
    struct epoll_event evs[256];
    for (;;) {
        long long t = now_ms();
        if (!measuring && t >= start) {
            measuring = 1, probes = answered = 0, cpu0 = cpu_s(&user0);
        }
        if (t >= end)
            break;
        /* due times rise in ring order (one interval for all): only the head can be due */
        while (c[head].due_ms <= t) {
            struct conn *x = &c[head];
            if (!x->waiting) { /* else its answer is late: this probe is skipped */
                if (write(x->fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
                    return perror("write"), 1;
                x->waiting = 1;
                probes++;
            }
            x->due_ms += every;
            head = (head + 1) % n;
        }
        long long next = c[head].due_ms < end ? c[head].due_ms : end;
        int k = epoll_wait(ep, evs, 256, next > t ? (int)(next - t) : 0);
        for (int e = 0; e < k; e++) {
            struct conn *x = &c[evs[e].data.u32];
            ssize_t got = read(x->fd, buf, sizeof buf);
            if (got <= 0)
                return fprintf(stderr, "prober: connection lost\n"), 1;
            /* the demo's answer comes in one segment */
            if (x->waiting && got > 12 && memcmp(buf + 9, "200", 3) == 0)
                answered++;
            x->waiting = 0;
        }
    }
    double cpu = cpu_s(&user1) - cpu0;
    printf("probes=%lld answered=%lld cpu_s=%.3f user_share=%.3f wall_s=%.3f\n", probes, answered,
           cpu, cpu > 0 ? (user1 - user0) / cpu : 0.0, seconds * 1.0);
    return 0;
}
