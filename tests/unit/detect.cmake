recoverd_unit_test(test_http)
# https probes go through the real plug-in, loaded from the build directory,
# which calls back the test's check_report.
target_link_options(test_http PRIVATE ${RECOVERD_PLUGIN_EXPORTS})
add_dependencies(test_http recoverd-https)
recoverd_unit_test(test_tcp)
