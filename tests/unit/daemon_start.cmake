# daemon/: the first start of many services, a bounded slice per loop turn.
recoverd_unit_test(test_daemon_start)
