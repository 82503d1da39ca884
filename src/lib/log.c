/* Line-per-event logger to stderr; one write(2) per line so lines from
 * concurrent writers never interleave. Every %s and %c value is escaped
 * here (lib/escape.h), so no caller can let a value end the line or forge
 * a field. */
#include "lib/log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/escape.h"

static enum log_level log__level = LOG_INFO;
static const char *const log__names[] = {
#define X(e, s) s,
    LOG_LEVEL_MAP(X)
#undef X
};

void log_set_level(enum log_level lvl)
{
    log__level = lvl;
}

int log_level_parse(const char *name)
{
    for (unsigned i = 0; i < sizeof log__names / sizeof *log__names; i++)
        if (strcmp(name, log__names[i]) == 0)
            return (int)i;
    return -1;
}

int log_enabled(enum log_level lvl)
{
    return lvl >= log__level;
}

/* A line being built: on the stack while short, on the heap past that. A
 * line is never cut (its values are read by programs) unless memory runs
 * out; then the cut line is written rather than none. */
struct log__line {
    char *p;          /* small, or malloc'd */
    size_t n;         /* bytes in p; n + 2 <= cap holds (room for "\n" and a NUL) */
    size_t cap;       /* bytes at p */
    bool cut;         /* out of memory: what follows is dropped */
    char small[2048]; /* most lines */
};

/* Where k more bytes go (with 2 to spare), or NULL: the line is cut there. */
static char *log__room(struct log__line *l, size_t k)
{
    if (l->cut)
        return NULL;
    if (l->n + k + 2 > l->cap) {
        size_t cap = l->cap * 2 > l->n + k + 2 ? l->cap * 2 : l->n + k + 2;
        char *p = malloc(cap);
        if (!p) {
            l->cut = true;
            return NULL;
        }
        memcpy(p, l->p, l->n);
        if (l->p != l->small)
            free(l->p);
        l->p = p;
        l->cap = cap;
    }
    return l->p + l->n;
}

static void log__put(struct log__line *l, const char *s, size_t k)
{
    char *d = log__room(l, k);
    if (d) {
        memcpy(d, s, k);
        l->n += k;
    }
}

/* A value from outside, escaped; quoted as well where the format left it
 * bare and it cannot stand bare (a space would start a forged field).
 * width pads it as printf would (left: on the right). */
static void log__value(struct log__line *l, const char *s, size_t n, bool quoted, int width,
                       bool left)
{
    bool wrap = !quoted && !escape_bare_ok(s, n);
    size_t e = escape_text(NULL, 0, s, n, ESCAPE_QUOTE), k = e + 2 * wrap;
    size_t pad = width > 0 && (size_t)width > k ? (size_t)width - k : 0;
    char *d = log__room(l, k + pad);
    if (!d)
        return;
    if (!left)
        d = (char *)memset(d, ' ', pad) + pad;
    if (wrap)
        *d++ = '"';
    d += escape_text(d, e + 1, s, n, ESCAPE_QUOTE); /* its NUL lands in the room's spare */
    if (wrap)
        *d++ = '"';
    if (left)
        memset(d, ' ', pad);
    l->n += k + pad;
}

/* One conversion of the caller's format, '*' arguments taken. */
struct log__spec {
    char text[48]; /* the conversion alone, '*' replaced by numbers: "%-5lld" */
    int width;     /* -1: none */
    int prec;      /* -1: none */
    bool left;     /* the '-' flag */
    char len[3];   /* length modifier: "", "hh", "h", "l", "ll", "z", "j", "t", "L" */
    char conv;     /* conversion character */
};

/* Every va_arg below takes from the va_list log_event started and ends:
 * the analyzer cannot see across the call. */
// NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
static int log__number(const char **f, va_list *ap)
{
    if (**f == '*') {
        (*f)++;
        return va_arg(*ap, int);
    }
    long v = 0;
    for (; **f >= '0' && **f <= '9'; (*f)++)
        v = v < 100000 ? v * 10 + (**f - '0') : v;
    return (int)v;
}

/* Parse the conversion after a '%' at f into sp; returns where the format
 * goes on. */
static const char *log__spec_parse(const char *f, va_list *ap, struct log__spec *sp)
{
    char flags[8];
    size_t nf = 0;
    memset(sp, 0, sizeof *sp);
    for (; *f && strchr("-+ #0", *f); f++)
        if (nf + 1 < sizeof flags)
            flags[nf++] = *f;
    flags[nf] = '\0';
    sp->left = strchr(flags, '-') != NULL;
    sp->width = -1;
    if (*f == '*' || (*f >= '0' && *f <= '9')) {
        int w = log__number(&f, ap);
        sp->left |= w < 0; /* printf: a negative '*' width is the '-' flag */
        sp->width = w < 0 ? (w == INT_MIN ? INT_MAX : -w) : w;
    }
    sp->prec = -1;
    if (*f == '.') {
        f++;
        sp->prec = log__number(&f, ap);
        sp->prec = sp->prec < 0 ? -1 : sp->prec; /* printf: a negative '*' is no precision */
    }
    size_t nl = 0;
    while (*f && strchr("hlzjtL", *f) && nl < 2)
        sp->len[nl++] = *f++;
    sp->conv = *f;
    f += *f != '\0';
    char w[16] = "", p[16] = "";
    if (sp->width >= 0)
        snprintf(w, sizeof w, "%d", sp->width);
    if (sp->prec >= 0)
        snprintf(p, sizeof p, ".%d", sp->prec);
    snprintf(sp->text, sizeof sp->text, "%%%s%s%s%s%c", flags, w, p, sp->len, sp->conv);
    return f;
}

/* A number or pointer, as printf writes it: no outside text there. */
#define LOG__NUMERIC(T)                                                                            \
    do {                                                                                           \
        T v_ = va_arg(*ap, T);                                                                     \
        int k_ = snprintf(NULL, 0, sp->text, v_);                                                  \
        char *d_ = k_ > 0 ? log__room(l, (size_t)k_) : NULL;                                       \
        if (d_) {                                                                                  \
            snprintf(d_, (size_t)k_ + 1, sp->text, v_);                                            \
            l->n += (size_t)k_;                                                                    \
        }                                                                                          \
    } while (0)

static bool log__is(const struct log__spec *sp, const char *len)
{
    return strcmp(sp->len, len) == 0;
}

/* Write one conversion's value; false for one the logger does not know
 * (%n among them), whose argument it cannot even step over. */
static bool log__convert(struct log__line *l, const struct log__spec *sp, va_list *ap, bool quoted)
{
    const char *s;
    char ch;
    switch (sp->conv) {
    case '%': log__put(l, "%", 1); return true;
    case 's':
        s = va_arg(*ap, const char *);
        s = s ? s : "(null)";
        log__value(l, s, sp->prec >= 0 ? strnlen(s, (size_t)sp->prec) : strlen(s), quoted,
                   sp->width, sp->left);
        return true;
    case 'c':
        ch = (char)va_arg(*ap, int);
        log__value(l, &ch, 1, quoted, sp->width, sp->left);
        return true;
    case 'd':
    case 'i':
        if (log__is(sp, "ll"))
            LOG__NUMERIC(long long);
        else if (log__is(sp, "l"))
            LOG__NUMERIC(long);
        else if (log__is(sp, "z") || log__is(sp, "t"))
            LOG__NUMERIC(ptrdiff_t);
        else if (log__is(sp, "j"))
            LOG__NUMERIC(intmax_t);
        else
            LOG__NUMERIC(int);
        return true;
    case 'u':
    case 'o':
    case 'x':
    case 'X':
        if (log__is(sp, "ll"))
            LOG__NUMERIC(unsigned long long);
        else if (log__is(sp, "l"))
            LOG__NUMERIC(unsigned long);
        else if (log__is(sp, "z") || log__is(sp, "t"))
            LOG__NUMERIC(size_t);
        else if (log__is(sp, "j"))
            LOG__NUMERIC(uintmax_t);
        else
            LOG__NUMERIC(unsigned);
        return true;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (log__is(sp, "L"))
            LOG__NUMERIC(long double);
        else
            LOG__NUMERIC(double);
        return true;
    case 'p': LOG__NUMERIC(void *); return true;
    default: return false;
    }
}

// NOLINTEND(clang-analyzer-valist.Uninitialized)

/* The caller's key=value tail. A '"' of the format opens or closes a
 * quoted value: what a conversion puts there is only escaped. */
static void log__tail(struct log__line *l, const char *fmt, va_list *ap)
{
    bool quoted = false;
    for (const char *f = fmt; *f;) {
        size_t lit = strcspn(f, "%\"");
        log__put(l, f, lit);
        f += lit;
        if (*f == '"') {
            quoted = !quoted;
            log__put(l, f++, 1);
        } else if (*f == '%') {
            struct log__spec sp;
            f = log__spec_parse(f + 1, ap, &sp);
            if (!log__convert(l, &sp, ap, quoted)) {
                log__put(l, "(bad format)", 12);
                return;
            }
        }
    }
}

void log_event(enum log_level lvl, const char *service, const char *event, const char *fmt, ...)
{
    if (!log_enabled(lvl))
        return;
    struct log__line l = {.cap = sizeof l.small};
    char stamp[32], head[64];
    struct timeval tv;
    struct tm tm;
    l.p = l.small;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(head, sizeof head, "%s.%03ldZ %-5s ", stamp, (long)tv.tv_usec / 1000,
                     log__names[lvl]);
    log__put(&l, head, k > 0 ? (size_t)k : 0);
    if (service)
        log__value(&l, service, strlen(service), false, 0, false);
    else
        log__put(&l, "-", 1);
    log__put(&l, " ", 1);
    log__put(&l, event, strlen(event));
    if (fmt) {
        va_list ap;
        log__put(&l, " ", 1);
        va_start(ap, fmt);
        log__tail(&l, fmt, &ap);
        va_end(ap);
    }
    l.p[l.n++] = '\n'; /* the room always keeps 2 bytes to spare */
    ssize_t w = write(STDERR_FILENO, l.p, l.n);
    (void)w;
    if (l.p != l.small)
        free(l.p);
}
