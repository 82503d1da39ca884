# core/program (helper programs) and the command detector built on it.
recoverd_unit_test(test_program)
recoverd_unit_test(test_command)
