# Webhook alerts against a receiver in the test's own loop.
recoverd_unit_test(test_alert)
# https webhooks go through the real plug-in, loaded from the build directory.
add_dependencies(test_alert recoverd-https)
# Receivers that are down for a few backoff rounds: more than the default minute.
set_tests_properties(test_alert PROPERTIES TIMEOUT 300)
