# daemon/: a retired service's close against every walk over the services.
recoverd_unit_test(test_daemon)
