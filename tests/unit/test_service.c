/* daemon/service's API view, written as text (lib/jsonw), against the view
 * it replaced: the same jansson tree, built as before, for services in
 * every state and with hostile text. Compared parsed (json_equal) and
 * re-dumped (same keys in the same order). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "daemon/service.h"
#include "lib/clock.h"
#include "lib/escape.h"
#include "lib/jsonw.h"
#include "lib/model.h"
#include "recover/strategy.h"

#define NOW_US 9000000000ull /* the request's monotonic time */

/* A strategy with figures of its own, as restart has: its view goes
 * between the recovery's members and "kind". */
static unsigned fake_restarts;

static void fake_view(const struct recovery *r, struct jsonw *w)
{
    jsonw_key(w, "restarts");
    jsonw_int(w, fake_restarts);
}

static const struct strategy_ops fake_restart = {.id = STRATEGY_RESTART, .view = fake_view};
static const struct strategy_ops *fake_table[STRATEGY__COUNT] = {
    [STRATEGY_RESTART] = &fake_restart};
static struct executor ex = {.strategies = fake_table};

/* ---- the view as it was built before (jansson), kept here as the reference ---- */

/* Text the old view could hold: jansson refuses a string that is not
 * UTF-8 (the member went missing); the writer puts U+FFFD for each byte
 * that is not, which is what the reference expects. */
static json_t *ref_string(const char *s)
{
    char fixed[1024];
    size_t n = strlen(s), k = 0;
    for (size_t i = 0; i < n;) {
        size_t span = escape_utf8_span(s + i, n - i);
        memcpy(fixed + k, s + i, span);
        k += span;
        i += span;
        if (i < n) {
            memcpy(fixed + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    fixed[k] = '\0';
    return json_string(fixed);
}

static json_t *ref_time(uint64_t ms)
{
    char buf[40];
    return ms ? json_string(clock_iso8601(ms, buf, sizeof buf)) : json_null();
}

static json_t *ref_check(const struct check *c)
{
    bool fresh = c->has_result && !c->stale;
    json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:b}", "name", c->cfg->name, "kind",
                          c->cfg->kind, "failing", c->failing, "consecutive_failures",
                          (json_int_t)c->fails, "consecutive_successes", (json_int_t)c->oks,
                          "stale", c->stale);
    json_object_set_new(j, "ok", fresh ? json_boolean(c->last.ok) : json_null());
    json_object_set_new(j, "reason", c->has_result ? ref_string(c->last.reason) : json_null());
    json_object_set_new(j, "at", ref_time(c->has_result ? c->last_ms : 0));
    json_object_set_new(j, "latency_ms",
                        c->has_result ? json_real((double)c->last.latency_us / 1000.0)
                                      : json_null());
    json_object_set_new(j, "probes", json_integer((json_int_t)c->probes));
    return j;
}

static json_t *ref_view(const struct service *s)
{
    const struct supervisor *sp = &s->sup;
    const struct recovery *r = &s->rec;
    const char *process = sup_state_name(sp->state);
    const struct strategy_ops *ops = strategy_find(s->rec.action.strategy);
    if (sp->state == SUP_DOWN && s->rec.state == REC_PENDING && ops && ops->starts_process)
        process = "waiting";
    json_t *j = json_pack("{s:s, s:s, s:s}", "name", s->name, "state", state_name(s->st.state),
                          "process", process);
    json_object_set_new(j, "recovery", json_string(recovery_state_name(r->state)));
    json_object_set_new(j, "held", json_boolean(r->held));
    json_object_set_new(j, "given_up", json_boolean(r->state == REC_GAVE_UP));
    json_object_set_new(j, "recovering",
                        json_boolean(r->state == REC_PENDING || r->state == REC_EXECUTING ||
                                     (r->state == REC_VERIFYING && r->has_action)));
    json_object_set_new(j, "restarts", json_integer(fake_restarts));
    json_object_set_new(j, "kind",
                        json_string(s->cfg->command   ? "supervised"
                                    : s->cfg->pidfile ? "external"
                                                      : "watched"));
    json_t *deps = json_array();
    for (char **dep = s->cfg->depends_on; dep && *dep; dep++)
        json_array_append_new(deps, json_string(*dep));
    json_object_set_new(j, "depends_on", deps);
    json_object_set_new(j, "pid", sp->pid > 0 ? json_integer(sp->pid) : json_null());
    json_object_set_new(j, "adopted", json_boolean(sp->adopted));
    json_object_set_new(j, "config_error",
                        s->cfg->problem ? ref_string(s->cfg->problem) : json_null());
    json_object_set_new(j, "cgroup", sp->encl.cgroup ? json_string(sp->encl.cgroup) : json_null());
    json_object_set_new(j, "since", ref_time(s->st.state_ms));
    bool up = sp->state != SUP_DOWN;
    json_object_set_new(j, "uptime_ms",
                        up ? json_integer((json_int_t)((NOW_US - sp->spawned_us) / 1000))
                           : json_null());
    if (sp->has_exit) {
        json_t *e = json_pack("{s:I, s:o}", "code", (json_int_t)sp->last.code, "at",
                              ref_time(sp->last_exit_ms));
        json_object_set_new(e, "signal",
                            sp->last.signal ? json_string(sigabbrev_np(sp->last.signal))
                                            : json_null());
        json_object_set_new(j, "last_exit", e);
    } else {
        json_object_set_new(j, "last_exit", json_null());
    }
    json_t *faults = json_array();
    for (size_t i = 0; i < s->faults.n_slots; i++)
        if (s->faults.slots[i].open)
            json_array_append_new(faults, json_integer(s->faults.slots[i].fault->id));
    json_object_set_new(j, "open_faults", faults);
    json_t *checks = json_array();
    for (size_t i = 0; i < s->checks.n; i++)
        json_array_append_new(checks, ref_check(&s->checks.checks[i]));
    json_object_set_new(j, "checks", checks);
    return j;
}

/* ---- services in many states ---- */

struct fx {
    struct service s;
    struct service_cfg cfg;
    struct check checks[3];
    struct check_cfg check_cfgs[3];
    struct fault_slot slots[5];
    struct fault fault[2]; /* the open slots' */
    char reason[3][200];   /* the checks' last words */
};

static struct fx *fx_new(const char *name, int n_checks)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->s.name, sizeof f->s.name, "%s", name);
    f->cfg.name = f->s.name;
    f->s.cfg = &f->cfg;
    f->s.rec.ex = &ex;
    f->s.rec.state = REC_IDLE;
    f->s.rec.action.strategy = STRATEGY_RESTART;
    f->s.st.state = STATE_NORMAL;
    f->s.st.state_ms = 1700000000123;
    f->s.faults.slots = f->slots;
    f->s.faults.n_slots = (size_t)n_checks + 2;
    f->s.checks.checks = f->checks;
    f->s.checks.n = (size_t)n_checks;
    static const char *const kinds[] = {"http", "tcp", "command"};
    for (int i = 0; i < n_checks; i++) {
        f->check_cfgs[i].name = (char *)kinds[i];
        f->check_cfgs[i].kind = kinds[i];
        f->checks[i].cfg = &f->check_cfgs[i];
    }
    return f;
}

/* A finished probe of check i. */
static void probed(struct fx *f, int i, bool ok, const char *reason, uint64_t latency_us)
{
    struct check *c = &f->checks[i];
    c->has_result = true;
    c->last.ok = ok;
    snprintf(f->reason[i], sizeof f->reason[i], "%s", reason);
    c->last.reason = f->reason[i];
    c->last.latency_us = latency_us;
    c->last_ms = 1700000001000 + latency_us % 1000;
    c->probes = 1000 + latency_us % 7;
    if (ok)
        c->oks = 3;
    else
        c->fails = 5, c->failing = true;
}

/* The writer's text for s against the reference: the same members, in
 * the same order, and text that parses to the same values. */
static void assert_same_view(const struct service *s)
{
    struct jsonw w = {0};
    size_t len = 0;
    service_view(s, &w, NOW_US);
    char *text = jsonw_finish(&w, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t err;
    json_t *got = json_loadb(text, len, 0, &err);
    if (!got)
        fail_msg("not JSON (%s at %d): %s", err.text, err.position, text);
    json_t *want = ref_view(s);
    char *a = json_dumps(got, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);
    if (!json_equal(got, want) || strcmp(a, b) != 0)
        fail_msg("service %s:\nwriter:    %s\nreference: %s", s->name, a, b);
    free(a);
    free(b);
    json_decref(got);
    json_decref(want);
    free(text);
}

static void view_of_a_running_supervised_service(void **state)
{
    static char *command[] = {"/bin/demo", NULL};
    static char *deps[] = {"db", "cache", NULL};
    struct fx *f = fx_new("web", 2);
    f->cfg.command = command;
    f->cfg.depends_on = deps;
    f->s.sup.state = SUP_RUNNING;
    f->s.sup.pid = 4242;
    f->s.sup.spawned_us = NOW_US - 5000123;
    f->s.sup.encl.cgroup = (char *)"/sys/fs/cgroup/unified/recoverd/web.service";
    fake_restarts = 2;
    probed(f, 0, true, "HTTP 200", 1234);
    probed(f, 1, true, "connected", 1);
    assert_same_view(&f->s);
    free(f);
}

static void view_of_a_failed_service_with_faults_and_hostile_reasons(void **state)
{
    static char *command[] = {"/bin/demo", NULL};
    struct fx *f = fx_new("api-1", 3);
    f->cfg.command = command;
    f->s.st.state = STATE_FAILED;
    f->s.rec.state = REC_GAVE_UP;
    f->s.sup.has_exit = true;
    f->s.sup.last = (struct sup_exit){.pid = 77, .code = -1, .signal = SIGKILL};
    f->s.sup.last_exit_ms = 1700000002999;
    f->fault[0] = (struct fault){.id = 12};
    f->fault[1] = (struct fault){.id = 9007199254740993};
    f->slots[0] = (struct fault_slot){.open = true, .fault = &f->fault[0]};
    f->slots[3] = (struct fault_slot){.open = true, .fault = &f->fault[1]};
    fake_restarts = 10;
    probed(f, 0, false, "body does not contain \"ok\": \\ \x01\x1f\b\f\n\r\t\x7f end", 999999);
    probed(f, 1, false, "timeout after 100 ms", 100000);
    probed(f, 2, false, "CRITICAL - \"quoted\" and \\back\\slashes\\", 123456789);
    f->checks[2].stale = true;
    assert_same_view(&f->s);
    free(f);
}

static void view_of_a_held_adopted_external_service_with_non_ascii(void **state)
{
    struct fx *f = fx_new("pg", 1);
    f->cfg.pidfile = (char *)"/run/pg.pid";
    f->s.st.state = STATE_DEGRADED;
    f->s.rec.held = true;
    f->s.rec.state = REC_VERIFYING;
    f->s.rec.has_action = true;
    f->s.sup.state = SUP_RUNNING;
    f->s.sup.adopted = true;
    f->s.sup.pid = 1;
    f->s.sup.spawned_us = NOW_US;
    fake_restarts = 0;
    /* é, €, an emoji, a right-to-left override, U+2028: valid UTF-8, kept as is */
    probed(f, 0, false, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xae \xe2\x80\xa8",
           1000);
    assert_same_view(&f->s);
    free(f);
}

static void view_of_a_watched_service_that_cannot_run(void **state)
{
    struct fx *f = fx_new("watched", 1);
    f->cfg.problem = (char *)"svc.yaml:3:5: error: user \"nobody2\" does not exist\n\tsee: x";
    f->s.st.state = STATE_FAILED;
    f->s.rec.state = REC_GAVE_UP;
    fake_restarts = 0;
    assert_same_view(&f->s); /* its check never ran: nulls */
    free(f);
}

/* A byte that is not UTF-8 made jansson drop the member; the writer keeps
 * it with U+FFFD in place of each such byte. */
static void view_of_a_waiting_service_with_invalid_utf8(void **state)
{
    static char *command[] = {"/bin/demo", NULL};
    struct fx *f = fx_new("crashy", 2);
    f->cfg.command = command;
    f->s.rec.state = REC_PENDING;
    f->s.sup.has_exit = true;
    f->s.sup.last = (struct sup_exit){.code = 1};
    f->s.sup.last_exit_ms = 1;
    fake_restarts = 1;
    probed(f, 0, false, "bad \xff\xfe bytes \xe2\x82 cut \xc3", 0);
    probed(f, 1, false, "\xf4\x90\x80\x80 past U+10FFFF, \xed\xa0\x80 a surrogate", 42);
    assert_same_view(&f->s);
    struct jsonw w = {0};
    size_t len = 0;
    service_view(&f->s, &w, NOW_US);
    char *text = jsonw_finish(&w, &len);
    assert_non_null(strstr(text, "\"process\":\"waiting\""));
    assert_non_null(strstr(text, "\"reason\":\"bad \xEF\xBF\xBD\xEF\xBF\xBD bytes"));
    free(text);
    free(f);
}

/* A listing is every view in a JSON array: many services in a row. */
static void views_in_a_row_make_one_array(void **state)
{
    static char *command[] = {"/bin/demo", NULL};
    struct jsonw w = {0};
    json_t *want = json_array();
    jsonw_array(&w);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%04d", i);
        struct fx *f = fx_new(name, i % 3);
        f->cfg.command = i % 2 ? command : NULL;
        f->s.sup.state = i % 4 ? SUP_RUNNING : SUP_DOWN;
        f->s.sup.pid = i % 4 ? 1000 + i : 0;
        f->s.sup.spawned_us = NOW_US - (uint64_t)i * 1000000;
        for (int k = 0; k < i % 3; k++)
            probed(f, k, i % 5 != 0, "HTTP 200", (uint64_t)i * 997);
        fake_restarts = (unsigned)i;
        service_view(&f->s, &w, NOW_US);
        json_array_append_new(want, ref_view(&f->s));
        free(f);
    }
    jsonw_array_end(&w);
    size_t len = 0;
    char *text = jsonw_finish(&w, &len);
    json_t *got = json_loadb(text, len, 0, NULL);
    assert_non_null(got);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(view_of_a_running_supervised_service),
        cmocka_unit_test(view_of_a_failed_service_with_faults_and_hostile_reasons),
        cmocka_unit_test(view_of_a_held_adopted_external_service_with_non_ascii),
        cmocka_unit_test(view_of_a_watched_service_that_cannot_run),
        cmocka_unit_test(view_of_a_waiting_service_with_invalid_utf8),
        cmocka_unit_test(views_in_a_row_make_one_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
