# lib/program (helper programs) and the command detector built on it.
recoverd_unit_test(test_program tests/unit/procfs.c)
recoverd_unit_test(test_command tests/unit/procfs.c)
