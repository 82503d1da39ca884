recoverd_unit_test(test_api tests/unit/apifix.c)
# The same tests with every journal read on the reader's thread (store/reader.h).
add_test(NAME test_api_reader COMMAND test_api --reader)
set_tests_properties(test_api_reader PROPERTIES TIMEOUT 300)
recoverd_unit_test(test_api_doors tests/unit/apifix.c)
recoverd_unit_test(test_request tests/unit/mutate.c)
