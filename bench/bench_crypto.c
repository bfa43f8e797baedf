/*
 * bench_crypto: what the crypto backend certfleet was built with costs per
 * operation of an ACME order, and the floor that puts under the CPU time of
 * one certificate.
 *
 *   bench_crypto [--jws N] [--seconds S]
 *
 * An order signs one JWS per request it sends (RFC 8555 §6.2: POST and
 * POST-as-GET alike), generates the certificate's key, signs its CSR and
 * writes the key as PKCS#8 PEM. --jws is the number of signed requests per
 * certificate to count (default 7.4, what the mock CA's renewal scenario
 * measured). Prints microseconds per operation (median of 5 rounds of S
 * seconds each) and the sum per certificate. A benchmark: it prints
 * numbers, it asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "crypto.h"

#define ROUNDS 5

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* cpu_s is this process's CPU time (user+sys) in seconds. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

enum op { OP_JWS, OP_KEYGEN, OP_CSR, OP_PEM, OP_SHA256, NOPS };
static const char *const op_names[NOPS] = {"JWS ES256 signature", "P-256 key generation",
                                           "CSR (build + sign)", "key as PKCS#8 PEM",
                                           "SHA-256 of 1 KiB"};

static struct crypto_key *g_key;
static unsigned char g_kib[1024];

static int run_op(enum op op)
{
    static const char input[] = "eyJhbGciOiJFUzI1NiIsImtpZCI6Imh0dHBzOi8vY2EvYWNjdC8xIiwibm9uY2"
                                "UiOiJhYmMiLCJ1cmwiOiJodHRwczovL2NhL29yZGVyIn0.e30";
    static const char *const names[] = {"www.customer-example.com"};
    struct buf out;
    struct crypto_key *k = NULL;
    unsigned char digest[CRYPTO_SHA256_LEN];
    int rc = 0;
    buf_init(&out);
    switch (op) {
    case OP_JWS:
        rc = crypto_jws_sign(g_key, &out, input, sizeof(input) - 1);
        break;
    case OP_KEYGEN:
        rc = crypto_key_generate(&k, CRYPTO_KEY_EC_P256);
        break;
    case OP_CSR:
        rc = crypto_csr_new(g_key, &out, names, 1);
        break;
    case OP_PEM:
        rc = crypto_key_to_pem(g_key, &out);
        break;
    case OP_SHA256:
        rc = crypto_sha256(digest, g_kib, sizeof(g_kib));
        break;
    case NOPS:
        break;
    }
    crypto_key_free(k);
    buf_cleanup(&out);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* measure returns op's median CPU microseconds per call over ROUNDS rounds of secs each. */
static double measure(enum op op, double secs)
{
    double per[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        long n = 0;
        double t0 = now_s(), c0 = cpu_s();
        do {
            for (int i = 0; i < 16; i++, n++)
                if (run_op(op) != 0) {
                    fprintf(stderr, "bench_crypto: %s failed\n", op_names[op]);
                    exit(1);
                }
        } while (now_s() - t0 < secs);
        per[r] = (cpu_s() - c0) / (double)n * 1e6;
    }
    qsort(per, ROUNDS, sizeof(per[0]), cmp_double);
    return per[ROUNDS / 2];
}

int main(int argc, char **argv)
{
    double jws = 7.4, secs = 0.3, us[NOPS];
    char backend[256] = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jws") == 0 && i + 1 < argc)
            jws = atof(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            secs = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_crypto [--jws N] [--seconds S]\n");
            return 2;
        }
    }
    if (crypto_key_generate(&g_key, CRYPTO_KEY_EC_P256) != 0) {
        fprintf(stderr, "bench_crypto: cannot generate a key\n");
        return 1;
    }
    memset(g_kib, 0x5a, sizeof(g_kib));
    crypto_backend_check(backend, sizeof(backend));
    printf("backend: %s (libcrypto at %s)\n", crypto_backend_version(), backend);
    for (int op = 0; op < NOPS; op++) {
        us[op] = measure((enum op)op, secs);
        printf("%-24s %9.1f us\n", op_names[op], us[op]);
    }
    double floor_us = jws * us[OP_JWS] + us[OP_KEYGEN] + us[OP_CSR] + us[OP_PEM];
    printf("per certificate: %.1f JWS x %.1f + key %.1f + CSR %.1f + PEM %.1f = %.0f us "
           "of crypto CPU (%.2f ms)\n",
           jws, us[OP_JWS], us[OP_KEYGEN], us[OP_CSR], us[OP_PEM], floor_us, floor_us / 1000);
    printf("certificates/s one core can sign at most: %.0f\n", 1e6 / floor_us);
    crypto_key_free(g_key);
    return 0;
}
