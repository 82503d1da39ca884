# daemon/: a retired service's close against every walk over the services;
# the first start of many services, a bounded slice per loop turn.
recoverd_unit_test(test_daemon)
