recoverd_unit_test(test_api)
recoverd_unit_test(test_request tests/unit/mutate.c)
