# Unit tests of the RFC 2136 provisioner (engine/dns/rfc2136.c).
cf_unit_test(test_rfc2136 test_rfc2136.c cf_dns)
