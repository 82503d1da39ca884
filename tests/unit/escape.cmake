recoverd_unit_test(test_escape)
# recoverctl's tables: table.c is recoverctl's, compiled in here.
recoverd_unit_test(test_table src/ctl/table.c)
