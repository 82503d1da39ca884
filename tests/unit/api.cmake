recoverd_unit_test(test_api tests/unit/apifix.c)
recoverd_unit_test(test_api_doors tests/unit/apifix.c)
recoverd_unit_test(test_request tests/unit/mutate.c)
