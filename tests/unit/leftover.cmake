# lib/procstat and recover/leftover: real processes stopped from a loop. The
# second run refuses pidfd_open (seccomp), so the /proc watch runs too.
recoverd_unit_test(test_procstat)
recoverd_unit_test(test_leftover tests/unit/procfs.c tests/unit/seccomp.c)
add_test(NAME test_leftover_procfs COMMAND test_leftover --no-pidfd)
set_tests_properties(test_leftover_procfs PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
