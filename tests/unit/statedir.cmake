# The state directory: default place, checks, lock, safe file opening.
recoverd_unit_test(test_statedir)
