/* The API's doors under abuse: a request's deadline, the full door that
 * evicts its oldest idle connection, the Host allow-list, and the
 * operators' Unix socket (peer credentials, its own cap, its file). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apifix.h"
#include "lib/hostnames.h"

/* ---- request deadlines and the full door ----------------------------------------------- */

struct trickle {
    size_t len;         /* bytes of the request the client trickled */
    size_t sent;        /* bytes sent before the server closed */
    bool closed;        /* the server closed the connection */
    bool silent_closed; /* a connection that sent nothing was closed too */
    int answers;        /* answers received (none expected) */
};

/* One byte every 30 ms of a 300-byte head: 9 s to send it whole, against
 * an idle timeout (10 s) that every byte would have reset. */
static void trickle_client(struct run *run)
{
    struct trickle *t = run->ctx;
    char req[512], c;
    int n = snprintf(req, sizeof req, "GET /v1/status HTTP/1.1\r\n" HOST "X-Pad: ");
    memset(req + n, 'p', 300 - (size_t)n - 4);
    memcpy(req + 300 - 4, "\r\n\r\n", 5);
    t->len = strlen(req);
    int fd = raw_connect(run->port, 0, 0);
    int silent = raw_connect(run->port, 0, 0);
    for (; t->sent < t->len; t->sent++) {
        ssize_t k = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
            t->closed = true;
            break;
        }
        t->answers += k > 0;
        if (send(fd, req + t->sent, 1, MSG_NOSIGNAL) != 1)
            break;
        usleep(30 * 1000);
    }
    t->silent_closed = raw_closed(silent);
    close(fd);
    close(silent);
}

static void slow_request_is_closed_at_its_deadline_however_it_trickles(void **state)
{
    struct trickle t = {0};
    struct run run = {.client = trickle_client, .ctx = &t, .request_ms = 300};
    run_serve(&run);
    assert_true(t.closed);
    assert_int_equal(t.answers, 0);
    assert_true(t.sent > 1 && t.sent < t.len); /* bytes were flowing when it was cut */
    assert_true(t.silent_closed);
}

struct full {
    bool oldest_evicted;  /* the first idle kept-alive connection was closed for the newcomer */
    bool newer_kept;      /* the second one was not (yet) */
    int newcomer_status;  /* the newcomer's answer */
    bool newer_evicted;   /* the next newcomer took the second one's place */
    bool partial_kept[2]; /* the connections in the middle of a request were never chosen */
    bool turned_away;     /* with no idle connection left, a newcomer is closed at once */
};

/* An idle kept-alive connection: one request answered, then quiet. */
static int kept_alive(unsigned port)
{
    struct answer a;
    bool closed;
    int fd = raw_connect(port, 0, 0);
    raw_send_str(fd, get_status);
    raw_answers(fd, &a, 1, 1, &closed);
    return fd;
}

static void full_client(struct run *run)
{
    struct full *t = run->ctx;
    struct answer a = {0};
    bool closed;
    int old = kept_alive(run->port);
    usleep(20 * 1000); /* the second is idle since later */
    int newer = kept_alive(run->port);
    int partial[2];
    for (int i = 0; i < 2; i++) {
        partial[i] = raw_connect(run->port, 0, 0);
        raw_send_str(partial[i], "GET /v1/sta");
    }
    usleep(50 * 1000); /* let the server read them: the door holds 4 */
    int first = raw_connect(run->port, 0, 0);
    raw_send_str(first, get_status);
    if (raw_answers(first, &a, 1, 1, &closed) == 1)
        t->newcomer_status = a.status;
    t->oldest_evicted = raw_closed(old);
    t->newer_kept = raw_open(newer);
    /* Now newer is the oldest idle one (first is idle since later). */
    int second = raw_connect(run->port, 0, 0);
    t->newer_evicted = raw_closed(newer);
    for (int i = 0; i < 2; i++)
        t->partial_kept[i] = raw_open(partial[i]);
    /* first, second and the partial ones: first is idle and goes; then none is. */
    raw_send_str(second, "GET /v1/sta");
    int third = raw_connect(run->port, 0, 0);
    raw_send_str(third, "GET /v1/sta");
    usleep(50 * 1000);
    int fourth = raw_connect(run->port, 0, 0);
    t->turned_away = raw_closed(fourth);
    int fds[] = {old, newer, partial[0], partial[1], first, second, third, fourth};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        close(fds[i]);
}

static void full_door_evicts_the_oldest_idle_connection_for_a_newcomer(void **state)
{
    struct full t = {0};
    /* Deadlines far off: no connection goes for its own sake here. */
    struct run run = {.client = full_client,
                      .ctx = &t,
                      .tcp_max = 4,
                      .idle_ms = 60000,
                      .request_ms = 60000};
    run_serve(&run);
    assert_int_equal(t.newcomer_status, 200);
    assert_true(t.oldest_evicted);
    assert_true(t.newer_kept);
    assert_true(t.newer_evicted);
    assert_true(t.partial_kept[0] && t.partial_kept[1]);
    assert_true(t.turned_away);
}

/* ---- the Host header ------------------------------------------------------------------- */

struct hosts {
    const char *hosts[12]; /* Host header values ("%u": the API's port); NULL: none sent */
    size_t n;
    const char *absolute; /* a request in absolute form to this authority, "" when none */
    int status[13];       /* the answers, hosts first, then the absolute one */
    char body[13][512];
};

static void hosts_client(struct run *run)
{
    struct hosts *t = run->ctx;
    struct answer a;
    bool closed;
    char req[512], host[128];
    for (size_t i = 0; i <= t->n; i++) {
        if (i == t->n && !*t->absolute)
            break;
        if (i == t->n) {
            snprintf(req, sizeof req, "GET http://%s/v1/status HTTP/1.1\r\n" HOST "\r\n",
                     t->absolute);
        } else {
            snprintf(host, sizeof host, t->hosts[i] ? t->hosts[i] : "", run->port);
            snprintf(req, sizeof req, "GET /v1/status HTTP/1.1\r\n%s%s%s\r\n",
                     t->hosts[i] ? "Host: " : "", host, t->hosts[i] ? "\r\n" : "");
        }
        int fd = raw_connect(run->port, 0, 0);
        raw_send_str(fd, req);
        if (raw_answers(fd, &a, 1, 1, &closed) == 1) {
            t->status[i] = a.status;
            snprintf(t->body[i], sizeof t->body[i], "%s", a.body);
        }
        close(fd);
    }
}

static void host_outside_the_allow_list_is_421(void **state)
{
    struct hosts t = {.hosts = {"127.0.0.1", "127.0.0.1:%u", "LOCALHOST:%u", "[::1]:%u",
                                "localhost", "evil.example", "evil.example:%u", "localhost:1",
                                "127.0.0.1.evil.example:%u", NULL},
                      .n = 10,
                      .absolute = "evil.example"};
    struct run run = {.client = hosts_client, .ctx = &t};
    run_serve(&run);
    for (int i = 0; i < 5; i++)
        assert_int_equal(t.status[i], 200);
    for (int i = 5; i < 9; i++) {
        assert_int_equal(t.status[i], 421);
        assert_non_null(strstr(t.body[i], "is not a name of this API"));
        assert_non_null(strstr(t.body[i], "api.hostnames"));
    }
    assert_non_null(strstr(t.body[5], "'evil.example'"));
    assert_int_equal(t.status[9], 400); /* no Host at all */
    assert_non_null(strstr(t.body[9], "missing Host header"));
    assert_int_equal(t.status[10], 421); /* the absolute target's authority counts */
}

static void configured_hostnames_replace_the_defaults(void **state)
{
    static char *const names[] = {"api.example", "[::1]:7411", NULL};
    struct hosts t = {.hosts = {"api.example", "API.example:%u", "[::1]:7411", "127.0.0.1", "[::1]",
                                "api.example:1"},
                      .n = 6,
                      .absolute = ""};
    struct run run = {.client = hosts_client, .ctx = &t, .hostnames = names};
    run_serve(&run);
    assert_int_equal(t.status[0], 200);
    assert_int_equal(t.status[1], 200);
    assert_int_equal(t.status[2], 200);
    assert_int_equal(t.status[3], 421);
    assert_int_equal(t.status[4], 421); /* an entry with a port allows that port only */
    assert_int_equal(t.status[5], 421);
}

static void hostnames_match_names_and_ports(void **state)
{
    static char *const names[] = {"localhost", "Box.Example", "[::1]", "10.0.0.1:8080", NULL};
    static const struct {
        const char *host;
        bool allowed;
    } cases[] = {
        {"localhost", true},
        {"localhost:7411", true},
        {"LocalHost:7411", true},
        {"localhost:7412", false},
        {"localhost:", false},
        {"localhost.:7411", false},
        {"box.example:7411", true},
        {"[::1]:7411", true},
        {"[::1]", true},
        {"[::1]:80", false},
        {"10.0.0.1:8080", true},
        {"10.0.0.1", false},
        {"10.0.0.1:7411", false},
        {"", false},
        {":7411", false},
        {"evil.localhost", false},
        {"localhost:7411x", false},
        {"[::2]:7411", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (hostnames_allow(names, 7411, cases[i].host, strlen(cases[i].host)) != cases[i].allowed)
            fail_msg("%s: expected %s", cases[i].host, cases[i].allowed ? "allowed" : "refused");
    assert_true(hostnames_allow(hostnames_default, 7411, "127.0.0.1:7411", 14));
}

static void hostnames_entries_are_names_or_addresses_with_a_port(void **state)
{
    static const char *const good[] = {"localhost",      "a.b-c.example", "127.0.0.1", "[::1]",
                                       "[fe80::1]:8080", "box:1",         "box:65535"};
    static const char *const bad[] = {"",         "-box",      ".box",     "box:",
                                      "box:0",    "box:65536", "box:08",   "b_x",
                                      "::1",      "[::1",      "[nothex]", "box:80:80",
                                      "box/path", "box:80x",   "b ox",     "[::1]x"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!hostnames_entry_valid(good[i]))
            fail_msg("'%s' refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (hostnames_entry_valid(bad[i]))
            fail_msg("'%s' accepted", bad[i]);
}

/* ---- the operators' Unix socket -------------------------------------------------------- */

/* A blocking connection to the Unix socket at path (a long path through
 * its directory, as recoverctl does); -1 when refused. */
static int unix_connect(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = 5};
    int dir = -1, fd = socket(AF_UNIX, SOCK_STREAM, 0);
    const char *slash = strrchr(path, '/');
    if (strlen(path) < sizeof sun.sun_path) {
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    } else {
        char parent[4096];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
        dir = open(parent, O_PATH | O_DIRECTORY);
        snprintf(sun.sun_path, sizeof sun.sun_path, "/proc/self/fd/%d/%s", dir, slash + 1);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
    if (dir >= 0)
        close(dir);
    if (r < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The status of one request sent alone on a fresh local connection, read
 * to the server's close into a fixed buffer: no malloc, so that a forked
 * child of this threaded process may call it. 0: no answer. */
static int unix_status(const char *path, const char *req)
{
    static char buf[4096];
    size_t len = 0;
    int status = 0, fd = unix_connect(path);
    if (fd < 0)
        return 0;
    (void)!write(fd, req, strlen(req));
    for (ssize_t k; len < sizeof buf - 1 && (k = read(fd, buf + len, sizeof buf - 1 - len)) > 0;)
        len += (size_t)k;
    buf[len] = '\0';
    close(fd);
    return sscanf(buf, "HTTP/1.1 %d", &status) == 1 ? status : 0;
}

static const char local_get[] = "GET /v1/status HTTP/1.1\r\nConnection: close\r\n\r\n";
static const char local_hold[] = "POST /v1/services/web/hold HTTP/1.1\r\nConnection: close\r\n"
                                 "Content-Length: 0\r\n\r\n";

/* Who a forked child becomes before it asks: uid, primary gid, one
 * supplementary group (-1: none). */
struct peer {
    uid_t uid;
    gid_t gid;
    long group;
    int get;  /* GET /v1/status: its status */
    int hold; /* POST hold without a token: its status */
};

static void peer_ask(const char *path, struct peer *p)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        gid_t g = (gid_t)p->group;
        int st[2] = {0, 0};
        if (setgroups(p->group >= 0 ? 1 : 0, &g) == 0 && setgid(p->gid) == 0 &&
            setuid(p->uid) == 0) {
            st[0] = unix_status(path, local_get);
            st[1] = unix_status(path, local_hold);
        }
        (void)!write(fds[1], st, sizeof st);
        _exit(0);
    }
    int st[2] = {0, 0};
    close(fds[1]);
    (void)!read(fds[0], st, sizeof st);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    p->get = st[0];
    p->hold = st[1];
}

struct peers {
    char path[128];   /* the socket */
    struct peer p[3]; /* asked in turn */
    size_t n;
    int root_get; /* the test's own (root) answers */
    int root_hold;
    int controls; /* controls that reached the backend */
};

static void peers_client(struct run *run)
{
    struct peers *t = run->ctx;
    /* Open the way for the children: the directory and socket are ours
     * (0700, 0660), and a real state_dir would be searchable by them. */
    chmod(tmp_dir, 0755);
    chmod(t->path, 0666);
    t->root_get = unix_status(t->path, local_get);
    t->root_hold = unix_status(t->path, local_hold);
    for (size_t i = 0; i < t->n; i++)
        peer_ask(t->path, &t->p[i]);
    t->controls = fake.controls_called;
}

static void local_root_may_act_without_the_token_others_may_only_read(void **state)
{
    struct peers t = {.p = {{.uid = 4242, .gid = 4242, .group = -1}}, .n = 1};
    snprintf(t.path, sizeof t.path, "%s/api.sock", tmp_dir);
    struct run run = {.client = peers_client, .ctx = &t, .socket_path = t.path};
    run_serve(&run);
    assert_int_equal(t.root_get, 200);
    assert_int_equal(t.root_hold, 200); /* root: no token needed */
    assert_int_equal(t.p[0].get, 200);
    assert_int_equal(t.p[0].hold, 403);
    assert_int_equal(t.controls, 1); /* root's alone */
    assert_int_equal(fake.last_op, API_HOLD);
}

static void local_members_of_the_group_may_act(void **state)
{
    struct group *gr = getgrgid(65534); /* nogroup: a group that exists on any Debian */
    assert_non_null(gr);
    char name[64];
    snprintf(name, sizeof name, "%s", gr->gr_name);
    struct peers t = {.p = {{.uid = 4242, .gid = 4242, .group = 65534}, /* supplementary */
                            {.uid = 4243, .gid = 65534, .group = -1},   /* primary */
                            {.uid = 4244, .gid = 4244, .group = 4245}}, /* neither */
                      .n = 3};
    snprintf(t.path, sizeof t.path, "%s/api.sock", tmp_dir);
    struct run run = {.client = peers_client, .ctx = &t, .socket_path = t.path, .group = name};
    run_serve(&run);
    assert_int_equal(t.p[0].hold, 200);
    assert_int_equal(t.p[1].hold, 200);
    assert_int_equal(t.p[2].get, 200);
    assert_int_equal(t.p[2].hold, 403);
    assert_int_equal(t.controls, 3); /* root and the two members */
}

struct crowd {
    char path[128]; /* the socket */
    int tcp_open;   /* TCP connections the server kept */
    int local;      /* the local request's status */
    int tcp_new;    /* a TCP newcomer: 0 (turned away) while the door is full of requests */
};

/* TCP full of requests in progress (none idle, none evictable): the
 * local door still answers. */
static void crowd_client(struct run *run)
{
    struct crowd *t = run->ctx;
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = raw_connect(run->port, 0, 0);
        raw_send_str(fds[i], "GET /v1/sta");
    }
    usleep(50 * 1000);
    for (int i = 0; i < 8; i++)
        t->tcp_open += raw_open(fds[i]);
    t->local = unix_status(t->path, local_get);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
}

static void local_door_is_not_crowded_out_by_tcp_clients(void **state)
{
    struct crowd t = {0};
    snprintf(t.path, sizeof t.path, "%s/api.sock", tmp_dir);
    struct run run = {.client = crowd_client,
                      .ctx = &t,
                      .socket_path = t.path,
                      .tcp_max = 4,
                      .request_ms = 60000};
    run_serve(&run);
    assert_int_equal(t.tcp_open, 4);
    assert_int_equal(t.local, 200);
}

static void local_socket_is_0660_and_removed_when_the_api_stops(void **state)
{
    uv_loop_t loop;
    char err[256], path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/api.sock", tmp_dir);
    struct api_options opt = {.socket_path = path};
    assert_int_equal(uv_loop_init(&loop), 0);
    struct api *a = api_make(&loop, "127.0.0.1", &opt, err, sizeof err);
    if (!a)
        fail_msg("api_new: %s", err);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    api_free(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(lstat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

/* A socket file nobody listens on, as a killed recoverd leaves it. */
static void stale_socket_make(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(strlen(path) < sizeof sun.sun_path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    close(fd);
}

static void local_socket_replaces_a_stale_one_and_leaves_others_alone(void **state)
{
    uv_loop_t loop;
    char err[256] = "", path[128], other[128] = "";
    struct stat st;
    snprintf(path, sizeof path, "%s/api.sock", tmp_dir);
    struct api_options opt = {.socket_path = path};
    assert_int_equal(uv_loop_init(&loop), 0);
    stale_socket_make(path);
    struct api *a = api_make(&loop, "127.0.0.1", &opt, err, sizeof err);
    if (!a)
        fail_msg("api_new over a stale socket: %s", err);
    /* A live one is another recoverd's: refused, and still answering. */
    assert_null(api_make(&loop, "127.0.0.1", &opt, other, sizeof other));
    assert_non_null(strstr(other, "another process answers on it"));
    api_free(a);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    /* Not a socket: somebody's file, never removed. */
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    assert_null(api_make(&loop, "127.0.0.1", &opt, other, sizeof other));
    assert_non_null(strstr(other, "not a socket of ours"));
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode) && st.st_size == 8);
    unlink(path);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct longpath {
    char path[256]; /* longer than sun_path */
    int status;     /* of a request through it */
};

static void longpath_client(struct run *run)
{
    struct longpath *t = run->ctx;
    t->status = unix_status(t->path, local_get);
}

static void local_socket_path_longer_than_sun_path_works(void **state)
{
    char dir[192];
    struct longpath t = {0};
    snprintf(dir, sizeof dir, "%s/%0100d", tmp_dir, 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(t.path, sizeof t.path, "%s/api.sock", dir);
    assert_true(strlen(t.path) >= sizeof((struct sockaddr_un *)0)->sun_path);
    struct run run = {.client = longpath_client, .ctx = &t, .socket_path = t.path};
    run_serve(&run);
    assert_int_equal(t.status, 200);
    assert_int_equal(access(t.path, F_OK), -1); /* removed at the end */
    rmdir(dir);
}

/* ---- answers in flight: the doors' budgets ---------------------------------------------- */

/* Bytes of padding in the fake services view: a MiB more than the
 * kernel's largest TCP send buffer (tcp_wmem's maximum), so that it never
 * takes a whole answer for a client that never reads and the rest waits
 * in ours. At a fixed 3 MB against a 4 MiB maximum it took about 2.3 MB,
 * but how much depends on its autotuning, and so, on a loaded host, did
 * whether a staller's answer was still ours to count and close. */
static size_t big_pad(void)
{
    unsigned long lo, def, max = 4ul << 20;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (f) {
        if (fscanf(f, "%lu %lu %lu", &lo, &def, &max) != 3)
            max = 4ul << 20;
        fclose(f);
    }
    return max + (1u << 20);
}

/* The doors' budget in these tests: one big answer leaves room, two
 * spend it. */
static size_t big_budget(void)
{
    return big_pad() / 2 * 3;
}
static const char get_services[] = "GET /v1/services HTTP/1.1\r\n" HOST "\r\n";

struct stall {
    int answered_first; /* stallers with bytes of an answer before the reader asked */
    int reader_status;  /* the well-behaved reader's answer */
    size_t reader_len;  /* its Content-Length */
    int reader_got;     /* complete answers it read (1: the whole body) */
    int first_closed;   /* of the stallers answered first, closed before their answer was out */
    int waiter_status;  /* the request that waited past its deadline */
    char waiter_body[512];
    char waiter_connection[16];
    bool waiter_closed;
    int local_status; /* the socket's answer while TCP's budget is spent */
    char path[128];   /* the socket */
};

/* Stallers: clients with a tiny receive buffer that ask for the big view
 * and never read. Waits (5 s at most) until want of them show bytes of an
 * answer, then 100 ms more, which only gives one more the chance to show
 * wrongly; answered[i]: staller i shows some. Returns how many do. */
static int stallers_start(unsigned port, int *fds, int n, bool *answered, int want)
{
    int got = 0;
    char c;
    for (int i = 0; i < n; i++) {
        fds[i] = raw_connect(port, 2048, 0);
        raw_send_str(fds[i], get_services);
    }
    for (uint64_t start = now_ms(); got < want && now_ms() - start < 5000; usleep(10 * 1000)) {
        got = 0;
        for (int i = 0; i < n; i++)
            got += recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
    }
    usleep(100 * 1000);
    got = 0;
    for (int i = 0; i < n; i++)
        got += answered[i] = recv(fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
    return got;
}

/* Two stallers spend the budget (two answers of 3 MB against 4 MiB), a
 * third waits behind them, then a client that reads asks. */
static void stall_client(struct run *run)
{
    struct stall *t = run->ctx;
    int fds[3];
    bool answered[3];
    struct answer a = {0};
    bool closed;
    t->answered_first = stallers_start(run->port, fds, 3, answered, 2);
    int fd = raw_connect(run->port, 0, 0);
    raw_send_str(fd, get_services);
    t->reader_got = raw_answers(fd, &a, 1, 1, &closed);
    t->reader_status = a.status;
    t->reader_len = a.body_len;
    close(fd);
    for (int i = 0; i < 3; i++) {
        if (answered[i])
            t->first_closed += raw_answers(fds[i], &a, 1, 1, &closed) == 0 && closed;
        close(fds[i]);
    }
}

static void stalled_readers_are_held_to_the_budget_and_closed_for_a_reader(void **state)
{
    struct stall t = {0};
    struct run run = {.client = stall_client,
                      .ctx = &t,
                      .request_ms = 30000,
                      .idle_ms = 30000,
                      .out_max = big_budget()};
    fake.services_pad = big_pad();
    run_serve(&run);
    /* The budget's worth, not the three answers asked. */
    assert_int_equal(t.answered_first, 2);
    /* The reader got its whole answer meanwhile... */
    assert_int_equal(t.reader_status, 200);
    assert_int_equal(t.reader_got, 1);
    assert_true(t.reader_len > big_pad());
    /* ...once stallers ahead of it were closed (not at their 30 s deadline):
     * the first, whose room went to the third (it waited longer than the
     * reader), then another. Which one is the kernel's to say: a staller's
     * peer window can open by a few bytes late, which is progress, and
     * then the third has stalled longer than the second. */
    assert_true(t.first_closed >= 1);
    assert_int_equal(run.out.evicted, 2);
    /* Never more in flight than the budget and one answer. */
    assert_true(run.out.peak >= 2 * big_pad());
    assert_true(run.out.peak < big_budget() + t.reader_len + 1024);
    assert_int_equal(run.out.refused, 0);
}

/* Two stallers spend the budget; a request waits past its deadline and is
 * told why. The deadline (2 s) is also the stallers' own to send their
 * requests, which a loaded host can delay; they count as stalled only
 * after 60 s, so that a host slow to bring the waiter cannot make room by
 * closing one. */
static void waiter_client(struct run *run)
{
    struct stall *t = run->ctx;
    int fds[2];
    bool answered[2];
    struct answer a = {0};
    t->answered_first = stallers_start(run->port, fds, 2, answered, 2);
    int fd = raw_connect(run->port, 0, 0);
    raw_send_str(fd, get_status);
    raw_answers(fd, &a, 1, 1, &t->waiter_closed);
    t->waiter_status = a.status;
    snprintf(t->waiter_body, sizeof t->waiter_body, "%s", a.body);
    snprintf(t->waiter_connection, sizeof t->waiter_connection, "%s", a.connection);
    t->waiter_closed = raw_closed(fd);
    close(fd);
    t->local_status = unix_status(t->path, local_get);
    for (int i = 0; i < 2; i++)
        close(fds[i]);
}

static void request_waiting_for_the_budget_past_its_deadline_is_503(void **state)
{
    struct stall t = {0};
    snprintf(t.path, sizeof t.path, "%s/api.sock", tmp_dir);
    struct run run = {.client = waiter_client,
                      .ctx = &t,
                      .request_ms = 2000,
                      .stall_ms = 60000,
                      .out_max = big_budget(),
                      .socket_path = t.path};
    fake.services_pad = big_pad();
    run_serve(&run);
    assert_int_equal(t.answered_first, 2);
    assert_int_equal(t.waiter_status, 503);
    assert_non_null(strstr(t.waiter_body, "answers in flight fill its budget"));
    assert_string_equal(t.waiter_connection, "close");
    assert_true(t.waiter_closed);
    assert_int_equal(run.out.refused, 1);
    /* The socket has its own budget: TCP's stallers do not make it wait. */
    assert_int_equal(t.local_status, 200);
}

/* A reader that takes its answer slowly, 64 KB every 100 ms: its bytes
 * mostly leave the kernel's buffer, not ours, yet it counts as moving. */
struct slow {
    int fd;
    size_t tick;   /* bytes it reads every 100 ms; 0: 64 KB */
    int ticks;     /* of 100 ms, after which it reads as fast as bytes come; 0: never */
    size_t got;    /* bytes read */
    bool complete; /* the whole answer came */
    bool closed;   /* the server closed before */
};

static void *slow_main(void *arg)
{
    struct slow *s = arg;
    size_t cap = big_pad() + (1u << 20);
    char *buf = malloc(cap);
    struct answer a;
    while (!s->complete && !s->closed && s->got < cap) {
        size_t tick = 0; /* its receive buffer is 2 KB: many reads make one tick */
        size_t want = s->tick ? s->tick : 65536;
        while ((tick < want || s->ticks == 1) && !s->complete && s->got < cap) {
            ssize_t k = recv(s->fd, buf + s->got, cap - s->got, 0);
            if (k <= 0) {
                s->closed = true;
                break;
            }
            s->got += (size_t)k;
            tick += (size_t)k;
            s->complete = answer_parse(buf, s->got, &a) > 0;
        }
        if (!s->ticks || --s->ticks > 0)
            usleep(100 * 1000);
    }
    free(buf);
    return NULL;
}

struct progress {
    int answered_first;
    struct slow slow;
    int staller_closed; /* the staller that never read was closed */
    int waiter_status;
};

/* Two clients spend the budget: one reads slowly, one never. A request
 * that waits makes room: the one that never reads is closed, the slow one
 * keeps its answer. */
static void progress_client(struct run *run)
{
    struct progress *t = run->ctx;
    int fds[2];
    bool answered[2], closed;
    struct answer a = {0};
    pthread_t th;
    t->answered_first = stallers_start(run->port, fds, 2, answered, 2);
    t->slow.fd = fds[0];
    assert_int_equal(pthread_create(&th, NULL, slow_main, &t->slow), 0);
    int fd = raw_connect(run->port, 0, 0);
    raw_send_str(fd, get_status);
    raw_answers(fd, &a, 1, 1, &closed);
    t->waiter_status = a.status;
    close(fd);
    t->staller_closed = raw_answers(fds[1], &a, 1, 1, &closed) == 0 && closed;
    pthread_join(th, NULL);
    close(fds[0]);
    close(fds[1]);
}

static void reader_that_takes_bytes_keeps_its_answer_when_room_is_made(void **state)
{
    struct progress t = {0};
    struct run run = {.client = progress_client,
                      .ctx = &t,
                      .request_ms = 30000,
                      .idle_ms = 30000,
                      .out_max = big_budget()};
    fake.services_pad = big_pad();
    run_serve(&run);
    assert_int_equal(t.answered_first, 2);
    assert_int_equal(t.waiter_status, 200);
    assert_true(t.staller_closed);
    assert_true(t.slow.complete);
    assert_false(t.slow.closed);
    assert_int_equal(run.out.evicted, 1);
}

/* A client reading a large answer slowly (16 KB every 100 ms for 3 s,
 * too little for the kernel to take more from our queue: bytes of it wait
 * there throughout) is not idle past the idle timeout (1 s, closed then
 * before): it gets the whole answer. */
static void slow_client(struct run *run)
{
    struct slow *s = run->ctx;
    s->fd = raw_connect(run->port, 2048, 0);
    raw_send_str(s->fd, get_services);
    slow_main(s);
    close(s->fd);
}

static void reader_taking_a_large_answer_slowly_is_not_idle(void **state)
{
    struct slow s = {.tick = 16384, .ticks = 30};
    struct run run = {.client = slow_client, .ctx = &s, .idle_ms = 1000};
    fake.services_pad = big_pad();
    run_serve(&run);
    assert_true(s.complete);
    assert_false(s.closed);
    assert_true(s.got > big_pad());
}

/* A journal read counts against its door while the reader runs it, by a
 * reserve (512 bytes a row asked), then by its answer; nothing stays
 * counted after. */
static void journal_read_counts_against_the_budget(void **state)
{
    struct http_req reqs[] = {{.path = "/v1/faults?limit=4000"}, {.path = "/v1/status"}};
    struct run run = {.reqs = reqs, .n = 2, .reader = true};
    run_serve(&run);
    assert_int_equal(reqs[0].status, 200);
    assert_int_equal(reqs[1].status, 200);
    assert_true(run.out.peak >= 4000 * 512);
    assert_int_equal(run.out.queued, 0);
}

/* ---- a listing in slices ---------------------------------------------------------------- */

/* One whole answer on fd: its status, its body (malloc'd, NUL-terminated)
 * and the body's length; NULL when it did not come whole. */
static char *whole_answer(int fd, int *status, size_t *body_len)
{
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        struct answer a;
        size_t used = answer_parse(buf, len, &a);
        if (used) {
            *status = a.status;
            *body_len = a.body_len;
            memmove(buf, buf + used - a.body_len, a.body_len);
            buf[a.body_len] = '\0';
            return buf;
        }
        if (len + 1 >= cap)
            assert_non_null(buf = realloc(buf, cap *= 2));
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0) {
            free(buf);
            return NULL;
        }
        len += (size_t)k;
    }
}

struct sliced {
    int status_status; /* GET /v1/status's, asked once the listing began */
    int list_status;   /* GET /v1/services's */
    size_t rows;       /* rows of the listing's array */
    bool in_order;     /* web, s0001, s0002... each once in order, s0500 not among them */
};

static void sliced_client(struct run *run)
{
    struct sliced *t = run->ctx;
    struct answer a = {0};
    bool closed;
    size_t len = 0;
    int list_fd = raw_connect(run->port, 0, 0), fd = raw_connect(run->port, 0, 0);
    raw_send_str(list_fd, get_services);
    for (uint64_t start = now_ms();
         !__atomic_load_n(&fake.slices, __ATOMIC_RELAXED) && now_ms() - start < 5000;)
        usleep(1000);
    raw_send_str(fd, get_status);
    raw_answers(fd, &a, 1, 1, &closed);
    t->status_status = a.status;
    char *body = whole_answer(list_fd, &t->list_status, &len);
    json_t *rows = body ? json_loadb(body, len, 0, NULL) : NULL;
    t->rows = json_array_size(rows);
    t->in_order = json_is_array(rows);
    for (size_t i = 0, want = 0; i < t->rows; i++, want++) {
        char name[32] = "web";
        want += want == 500; /* gone when its slice came */
        if (want)
            snprintf(name, sizeof name, "s%04zu", want);
        const char *got = json_string_value(json_object_get(json_array_get(rows, i), "name"));
        t->in_order &= got && strcmp(got, name) == 0;
    }
    json_decref(rows);
    free(body);
    close(fd);
    close(list_fd);
}

/* A listing of 1,000 rows held at its first slice: another request is
 * answered meanwhile (the loop turns between slices), then the listing
 * comes whole, one valid array, in slices of the size asked, without the
 * service that was gone when its slice came. */
static void listing_in_slices_lets_the_loop_turn_and_comes_whole(void **state)
{
    struct sliced t = {0};
    struct run run = {.client = sliced_client, .ctx = &t, .slice_rows = 10, .slice_one = true};
    fake.services_more = 999;
    fake.services_gone = "s0500";
    fake.services_held = true;
    run_serve(&run);
    assert_int_equal(t.status_status, 200);
    assert_true(fake.slices_at_status >= 1); /* the listing had begun... */
    assert_true(fake.rows_at_status < 999);  /* ...and was not whole */
    assert_int_equal(t.list_status, 200);
    assert_int_equal(t.rows, 999);
    assert_true(t.in_order);
    assert_int_equal(fake.slice_rows_max, 10); /* in slices of the size asked */
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(slow_request_is_closed_at_its_deadline_however_it_trickles),
        T(full_door_evicts_the_oldest_idle_connection_for_a_newcomer),
        T(host_outside_the_allow_list_is_421),
        T(configured_hostnames_replace_the_defaults),
        T(hostnames_match_names_and_ports),
        T(hostnames_entries_are_names_or_addresses_with_a_port),
        T(local_root_may_act_without_the_token_others_may_only_read),
        T(local_members_of_the_group_may_act),
        T(local_door_is_not_crowded_out_by_tcp_clients),
        T(local_socket_is_0660_and_removed_when_the_api_stops),
        T(local_socket_replaces_a_stale_one_and_leaves_others_alone),
        T(local_socket_path_longer_than_sun_path_works),
        T(stalled_readers_are_held_to_the_budget_and_closed_for_a_reader),
        T(request_waiting_for_the_budget_past_its_deadline_is_503),
        T(reader_that_takes_bytes_keeps_its_answer_when_room_is_made),
        T(reader_taking_a_large_answer_slowly_is_not_idle),
        T(journal_read_counts_against_the_budget),
        T(listing_in_slices_lets_the_loop_turn_and_comes_whole),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}
