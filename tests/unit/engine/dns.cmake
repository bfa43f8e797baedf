# Unit tests of engine/dns.
cf_unit_test(test_dnswire test_dnswire.c cf_dns)
