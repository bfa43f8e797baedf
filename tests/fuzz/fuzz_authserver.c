/*
 * fuzz_authserver.c - libFuzzer target for the embedded authoritative
 * server's answer function.
 *
 * A store in a temporary directory holds a few published names (two values
 * at one name, a set too large for UDP, an empty non-terminal above them);
 * arbitrary bytes are answered as a UDP query and as a TCP query. An answer
 * must parse, carry QR and the query's ID, fit the transport (512 octets
 * without EDNS, AUTHSRV_UDP_MAX with it) and never be larger than needed
 * for names outside the zone (REFUSED: no amplification).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authserver.h"
#include "dnswire.h"
#include "err.h"
#include "store.h"

#define ZONE "acme.cdn.test"

static char dir[64];
static struct store *st;
static struct authsrv *srv;

static void check(int ok)
{
    if (!ok)
        abort();
}

static void cleanup(void)
{
    char cmd[128];
    authsrv_free(srv);
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_authserver: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/cf-fuzz-authsrv-XXXXXX");
    check(mkdtemp(dir) != NULL);
    check(store_open(&st, dir, NULL) == 0);
    struct store_batch *b = store_batch_new(st);
    store_batch_txt_add(b, "www.example.com." ZONE, "digest-one");
    store_batch_txt_add(b, "www.example.com." ZONE, "digest-two");
    store_batch_txt_add(b, "h0123456789abcdefghijklmnopqrstuv." ZONE, "hashed");
    for (int i = 0; i < 20; i++) {
        char v[128];
        snprintf(v, sizeof(v), "%02d-%0100d", i, 0);
        store_batch_txt_add(b, "big." ZONE, v);
    }
    check(store_batch_commit(b) == 0);
    store_batch_free(b);
    struct authsrv_ns ns[] = {
        {"ns1." ZONE, "192.0.2.53"},
        {"ns1." ZONE, "2001:db8::53"},
        {"ns.provider.test", NULL},
    };
    struct authsrv_opts o = {.zone = ZONE, .ns = ns, .n_ns = 3};
    check(authsrv_new(&srv, NULL, st, &o) == 0);
    atexit(cleanup);
    return 0;
}

static void answer(const uint8_t *data, size_t size, size_t max_udp)
{
    static uint8_t out[65535];
    size_t len = 0;
    struct dnswire_msg m;
    if (authsrv_answer(srv, out, sizeof(out), &len, data, size, max_udp) != 0)
        return;
    check(size >= DNSWIRE_HEADER_LEN && len >= DNSWIRE_HEADER_LEN && len <= sizeof(out));
    check(dnswire_msg_parse(&m, out, len) == 0);
    check(m.hdr.qr == 1 && m.hdr.id == (uint16_t)(data[0] << 8 | data[1]));
    check(m.qdcount <= 1);
    if (max_udp) {
        /* RFC 6891 §7: with EDNS up to the client's size (at most ours), else 512. */
        check(len <= (m.edns.present ? AUTHSRV_UDP_MAX : DNSWIRE_UDP_MIN));
    }
    if ((m.hdr.rcode & 0xf) == DNSWIRE_RCODE_REFUSED) {
        /* The question and an OPT record: never more than the query (no amplification). */
        check(m.ancount == 0 && m.nscount == 0 && m.hdr.aa == 0);
        check(len <= size + 11);
    }
    if (m.hdr.tc)
        check(m.ancount == 0 && m.nscount == 0);
    dnswire_msg_cleanup(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    answer(data, size, AUTHSRV_UDP_MAX);
    answer(data, size, 0);
    return 0;
}
