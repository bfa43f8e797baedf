# Unit tests of the embedded authoritative DNS server (engine/dns/authserver.c).
cf_unit_test(test_authserver test_authserver.c cf_dns cf_store)
