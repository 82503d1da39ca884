# lib's HTTP/1.1 response parser and client (the client against a server in
# the test's own loop).
recoverd_unit_test(test_http_response tests/unit/mutate.c)
recoverd_unit_test(test_http_client tests/unit/httpsrv.c)
