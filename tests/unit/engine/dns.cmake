# Unit tests of engine/dns.
cf_unit_test(test_dnswire test_dnswire.c cf_dns)
# The UDP client for DNS questions and the resolver client on it, against a scripted server.
cf_unit_test(test_udpq test_udpq.c cf_dns)
# The delegation check against a scripted resolver and two authoritative addresses.
cf_unit_test(test_checks test_checks.c cf_dns)
