# Webhook alerts against a receiver in the test's own loop.
recoverd_unit_test(test_alert)
# https webhooks go through the real plug-in, loaded from the build directory.
add_dependencies(test_alert recoverd-https)
