cf_unit_test(test_http test_http.c cf_http)
