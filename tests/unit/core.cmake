recoverd_unit_test(test_state)
recoverd_unit_test(test_restart)
recoverd_unit_test(test_supervisor)
recoverd_unit_test(test_output)
recoverd_unit_test(test_check)
recoverd_unit_test(test_spawn tests/unit/seccomp.c)
recoverd_unit_test(test_lookup)
recoverd_unit_test(test_executor tests/unit/recfix.c tests/unit/fakeclock.c)
recoverd_unit_test(test_recovery_table tests/unit/recfix.c tests/unit/fakeclock.c)
# The executor over fake strategies and a fake clock: no process, no sleep.
recoverd_unit_test(test_executor_clock tests/unit/recfix.c tests/unit/fakeclock.c)
recoverd_unit_test(test_text)
# lib/namemap: the by-name table of the hot paths.
recoverd_unit_test(test_namemap)
recoverd_unit_test(test_log)
recoverd_unit_test(test_analyzer tests/unit/fakeclock.c)
# 72 cells, each with real processes: more than the default minute on a loaded host.
set_tests_properties(test_recovery_table PROPERTIES TIMEOUT 600)
recoverd_unit_test(test_preflight)
# lib/clock's injected clock, lib/uvclock, and the tests' fake clock.
recoverd_unit_test(test_clock tests/unit/fakeclock.c)
# daemon/loopwatch, the loop's stall gauge (/v1/status "loop").
recoverd_unit_test(test_loopwatch)
# lib/jsonw, the JSON writer of the large views, against jansson's dump.
recoverd_unit_test(test_jsonw)
# daemon/service's API view, written with lib/jsonw, against the jansson
# view it replaced.
recoverd_unit_test(test_service)
# lib/wheel: timers many to one libuv timer, on wheels of slots of the loop's clock
# (deadlines to the ms, the checks' 10 ms grid).
recoverd_unit_test(test_wheel)
