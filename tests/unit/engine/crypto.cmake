cf_unit_test(test_crypto test_crypto.c cf_crypto)
