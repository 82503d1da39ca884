/* Fixtures of the postgres and redis detector tests: see dbfix.h. */
#include "dbfix.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libfyaml.h>
#include <cmocka.h>

#include "config/cfgmap.h"
#include "config/config-t.h"
#include "detect/detector.h"
#include "loopwait.h"

/* ---- the fake of detect/check.c ---- */

static struct observation dbfix__got;     /* the latest report */
static int dbfix__n_got;                  /* reports so far */
static struct loopwait_mark *dbfix__mark; /* of the probe in dbfix_probe; NULL: none */
static bool dbfix__got_late;              /* the mark had fired at the latest report */

void check_report(struct check *c, struct observation *obs)
{
    c->in_flight = false;
    dbfix__got = *obs;
    dbfix__got_late = dbfix__mark && dbfix__mark->fired;
    dbfix__n_got++;
}

int dbfix_reports(void)
{
    return dbfix__n_got;
}

static uint64_t dbfix__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- processes ---- */

int dbfix_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void dbfix__become_postgres(void)
{
    struct passwd *pw = getpwnam("postgres");
    if (!pw || setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        _exit(126);
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", "postgres", 1);
}

pid_t dbfix_spawn(const char *const argv[], const char *log, bool as_postgres)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        setsid(); /* ^C of the test run is the test's business, not the server's */
        if (as_postgres && getuid() == 0)
            dbfix__become_postgres();
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int dbfix__reap(pid_t pid, int ms)
{
    uint64_t end = dbfix__now_ms() + (uint64_t)ms;
    int st;
    do {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        loopwait_nap(10);
    } while (dbfix__now_ms() < end);
    return -1;
}

int dbfix_run(const char *const argv[], const char *log, bool as_postgres, int ms)
{
    pid_t pid = dbfix_spawn(argv, log, as_postgres);
    int st = dbfix__reap(pid, ms);
    if (st < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int dbfix_wait_log(const char *path, const char *words, int ms)
{
    uint64_t end = dbfix__now_ms() + (uint64_t)ms;
    static char buf[1 << 16];
    do {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (strstr(buf, words))
                return 0;
        }
        loopwait_nap(20);
    } while (dbfix__now_ms() < end);
    return -1;
}

static int dbfix__connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int dbfix_wait_port(int port, int ms)
{
    uint64_t end = dbfix__now_ms() + (uint64_t)ms;
    do {
        int fd = dbfix__connect(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        loopwait_nap(20);
    } while (dbfix__now_ms() < end);
    return -1;
}

void dbfix_stop(pid_t pid, int sig, int ms)
{
    if (pid <= 0)
        return;
    kill(pid, SIGCONT); /* a frozen server cannot act on sig */
    kill(pid, sig);
    if (dbfix__reap(pid, ms) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

void dbfix_freeze(pid_t pid, bool freeze)
{
    int sig = freeze ? SIGSTOP : SIGCONT;
    DIR *d = opendir("/proc");
    struct dirent *e;
    char path[64], buf[512];
    kill(pid, sig);
    while (d && (e = readdir(d))) {
        int child = atoi(e->d_name), ppid = 0;
        if (child <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", child);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')'); /* comm may hold spaces */
        if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == pid)
            kill(child, sig);
    }
    if (d)
        closedir(d);
}

static void dbfix__chown_postgres(const char *path, bool as_postgres)
{
    struct passwd *pw = as_postgres && getuid() == 0 ? getpwnam("postgres") : NULL;
    if (pw)
        assert_int_equal(chown(path, pw->pw_uid, pw->pw_gid), 0);
}

int dbfix_tmpdir(char *dir, size_t len, bool as_postgres)
{
    snprintf(dir, len, "/tmp/recoverd-db-XXXXXX");
    if (!mkdtemp(dir))
        return -errno;
    dbfix__chown_postgres(dir, as_postgres);
    return 0;
}

void dbfix_write(const char *path, const char *text, bool as_postgres)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    dbfix__chown_postgres(path, as_postgres);
}

static int dbfix__rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void dbfix_rmdir(const char *dir)
{
    if (dir && dir[0])
        nftw(dir, dbfix__rm, 16, FTW_DEPTH | FTW_PHYS);
}

bool dbfix_have(const char *path)
{
    return access(path, X_OK) == 0;
}

/* out holds until and a line end after it. */
static bool dbfix__heard(const char *out, const char *until)
{
    const char *at = until ? strstr(out, until) : NULL;
    return at && strchr(at + strlen(until), '\n');
}

int dbfix_talk(int port, const char *send, const char *until, char *out, size_t len, int ms)
{
    int fd = dbfix__connect(port), n = 0, r;
    uint64_t end = dbfix__now_ms() + (uint64_t)ms;
    out[0] = '\0';
    if (fd < 0)
        return -1;
    if (write(fd, send, strlen(send)) != (ssize_t)strlen(send)) {
        close(fd);
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while ((size_t)n < len - 1 && !dbfix__heard(out, until)) {
        uint64_t now = dbfix__now_ms();
        if (now >= end || poll(&p, 1, (int)(end - now)) != 1 ||
            (r = (int)read(fd, out + n, len - 1 - (size_t)n)) <= 0)
            break;
        n += r;
        out[n] = '\0';
    }
    close(fd);
    return n;
}

/* ---- checks and probes ---- */

struct dbfix__check {
    struct check c;          /* what the detector sees */
    struct check_cfg cfg;    /* c.cfg */
    struct fy_document *doc; /* the YAML the params came from */
};

/* Map yaml onto fresh params of kind; 0 or -EINVAL with why. */
static int dbfix__params(const struct detector_ops *ops, const char *yaml, void **out,
                         struct fy_document **doc, char *why, size_t len)
{
    struct cfg_err err = {0};
    void *p = calloc(1, ops->params_size);
    assert_non_null(p);
    *doc = fy_document_build_from_string(NULL, yaml, FY_NT);
    assert_non_null(*doc);
    if (ops->params_init)
        ops->params_init(p);
    int r = cfg_map(fy_document_root(*doc), ops->fields, p, &err);
    if (r < 0)
        snprintf(why, len, "%s", err.msg);
    else if (ops->validate)
        r = ops->validate(p, why, len);
    *out = p;
    return r;
}

int dbfix_validate(const char *kind, const char *yaml, char *why, size_t len)
{
    const struct detector_ops *ops = detector_find(kind);
    struct fy_document *doc;
    void *p;
    assert_non_null(ops);
    int r = dbfix__params(ops, yaml, &p, &doc, why, len);
    cfg_fields_free(ops->fields, p);
    free(p);
    fy_document_destroy(doc);
    return r;
}

struct check *dbfix_check_new(const char *kind, const char *yaml, uint64_t timeout_ms)
{
    const struct detector_ops *ops = detector_find(kind);
    struct dbfix__check *k = calloc(1, sizeof *k);
    char why[512] = "";
    assert_non_null(ops);
    assert_non_null(k);
    int r = dbfix__params(ops, yaml, &k->cfg.params, &k->doc, why, sizeof why);
    if (r < 0)
        fail_msg("%s: %s", yaml, why);
    k->cfg.name = (char *)kind;
    k->cfg.ops = ops;
    k->cfg.timeout_ms = timeout_ms;
    k->cfg.interval_ms = 1000;
    k->cfg.fall = k->cfg.rise = 1;
    k->cfg.severity = k->cfg.type = k->cfg.impact = -1;
    k->c.cfg = &k->cfg;
    k->c.ops = ops;
    return &k->c;
}

void dbfix_check_timeout(struct check *c, uint64_t ms)
{
    ((struct dbfix__check *)c)->cfg.timeout_ms = ms;
}

void dbfix_check_free(struct check *c)
{
    struct dbfix__check *k = (struct dbfix__check *)c;
    if (!c)
        return;
    if (c->in_flight)
        c->ops->cancel(c);
    c->ops->release(c);
    cfg_fields_free(c->ops->fields, k->cfg.params);
    free(k->cfg.params);
    fy_document_destroy(k->doc);
    free(k);
}

bool dbfix_probe(uv_loop_t *loop, struct check *c, uint64_t within_ms, struct observation *obs,
                 uint64_t *elapsed_ms)
{
    int before = dbfix__n_got;
    uv_update_time(loop); /* the probe's deadline counts from now: the mark's too */
    uint64_t start = uv_now(loop);
    dbfix__mark = within_ms ? loopwait_mark_new(loop, within_ms) : NULL;
    c->in_flight = true;
    assert_int_equal(c->ops->start(c), 0);
    assert_int_equal(dbfix__n_got, before); /* never from inside start */
    loopwait_until(loop, dbfix__n_got > before);
    *obs = dbfix__got;
    if (elapsed_ms)
        *elapsed_ms = uv_now(loop) - start; /* the time of the turn that reported */
    if (dbfix__mark)
        loopwait_mark_free(dbfix__mark);
    dbfix__mark = NULL;
    return !dbfix__got_late;
}

static void dbfix__walk_cb(uv_handle_t *h, void *arg)
{
    fprintf(stderr, "# handle left open: %s\n", uv_handle_type_name(h->type));
}

uv_loop_t *dbfix_loop_new(void)
{
    uv_loop_t *loop = malloc(sizeof *loop);
    assert_non_null(loop);
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(detector_init_all(loop), 0);
    return loop;
}

void dbfix_loop_free(uv_loop_t *loop, pid_t server)
{
    if (server)
        dbfix_freeze(server, false);
    detector_shutdown_all();
    dbfix_loop_close(loop);
    free(loop);
}

void dbfix_loop_close(uv_loop_t *loop)
{
    /* Closing handles and a cancelled getaddrinfo (back from libuv's pool
     * when a thread gets to it) need a few turns; a handle left active by
     * the code under test would keep the loop alive past the deadline. */
    uint64_t end = dbfix__now_ms() + LOOPWAIT_MS;
    while (uv_loop_alive(loop) && dbfix__now_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (uv_loop_alive(loop))
            loopwait_nap(2);
    }
    uv_walk(loop, dbfix__walk_cb, NULL);
    assert_int_equal(uv_loop_close(loop), 0);
}
