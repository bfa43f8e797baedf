cf_unit_test(test_acme_proto test_acme_proto.c cf_acme)
