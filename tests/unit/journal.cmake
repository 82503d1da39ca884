recoverd_unit_test(test_journal tests/unit/syncvfs.c)
# store/reader: the API's journal reads on a thread of their own.
recoverd_unit_test(test_reader)
