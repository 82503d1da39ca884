recoverd_unit_test(test_http tests/unit/httpsrv.c)
# https probes go through the real plug-in, loaded from the build directory,
# which reports to the test's check_report through the host table.
add_dependencies(test_http recoverd-https)
recoverd_unit_test(test_tcp)
