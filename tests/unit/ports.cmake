# lib/srcport and daemon/ports: the ephemeral range, the warning at load and
# the source ports of recoverd's own connections.
recoverd_unit_test(test_ports)
