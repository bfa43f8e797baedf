/*
 * fuzz_dns_message.c - libFuzzer target for the DNS message parser.
 *
 * Arbitrary bytes are parsed as a message (also into caller storage, which
 * must give the same records); every record's RDATA is decoded
 * by its type, every name is printed as text, the TSIG check runs, and
 * every record that decodes is written again through the writer and read
 * back, which must give the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnswire.h"

static const struct dnswire_tsig_key fuzz_key = {
    .name = {4, 'f', 'u', 'z', 'z', 0},
    .name_len = 6,
    .secret = "fuzz-secret-fuzz-secret-fuzz-sec",
    .secret_len = 32,
};

/* check fails the run loudly: a mismatch is a bug libFuzzer must report. */
static void check(int ok)
{
    if (!ok)
        abort();
}

/*
 * rewrite writes rr's decoded value rd under rr's owner into a fresh message
 * and parses it back, returning the new message's only record in *out.
 */
static int rewrite(const struct dnswire_rr *rr, const struct dnswire_rdata *rd, uint8_t *buf,
                   size_t cap, struct dnswire_msg *out)
{
    struct dnswire_writer w;
    struct dnswire_header h = {.id = 1, .qr = 1};
    dnswire_writer_init(&w, buf, cap);
    check(dnswire_write_header(&w, &h) == 0);
    if (dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, rr->name, rr->name_len, rr->class, rr->ttl,
                         rd) != 0)
        return -1; /* a TXT value too long once re-split: allowed to fail */
    check(dnswire_msg_parse(out, buf, w.len) == 0);
    check(out->ancount == 1 && out->rr[0].type == rr->type);
    check(dnswire_name_equal(out->rr[0].name, out->rr[0].name_len, rr->name, rr->name_len));
    return 0;
}

static void decode_one(const struct dnswire_msg *m, const struct dnswire_rr *rr, uint8_t *buf,
                       size_t cap)
{
    static uint8_t txt[65536], txt2[65536];
    uint8_t name[DNSWIRE_NAME_MAX], name2[DNSWIRE_NAME_MAX], addr[16], addr2[16];
    size_t len, len2;
    struct dnswire_soa soa, soa2;
    struct dnswire_rdata rd = {.type = rr->type};
    struct dnswire_msg back;
    char text[DNSWIRE_NAME_TEXT_MAX];

    check(dnswire_name_to_text(text, sizeof(text), rr->name, rr->name_len) == 0);
    switch (rr->type) {
    case DNSWIRE_TYPE_A:
        if (dnswire_rdata_a(rr, addr) != 0)
            return;
        memcpy(rd.u.a, addr, 4);
        if (rewrite(rr, &rd, buf, cap, &back) == 0) {
            check(dnswire_rdata_a(&back.rr[0], addr2) == 0 && memcmp(addr, addr2, 4) == 0);
            dnswire_msg_cleanup(&back);
        }
        return;
    case DNSWIRE_TYPE_AAAA:
        if (dnswire_rdata_aaaa(rr, addr) != 0)
            return;
        memcpy(rd.u.aaaa, addr, 16);
        if (rewrite(rr, &rd, buf, cap, &back) == 0) {
            check(dnswire_rdata_aaaa(&back.rr[0], addr2) == 0 && memcmp(addr, addr2, 16) == 0);
            dnswire_msg_cleanup(&back);
        }
        return;
    case DNSWIRE_TYPE_NS:
    case DNSWIRE_TYPE_CNAME:
    case DNSWIRE_TYPE_DNAME:
    case DNSWIRE_TYPE_PTR:
        if (dnswire_rdata_name(m, rr, name, &len) != 0)
            return;
        check(dnswire_name_check(name, len) == 0);
        check(dnswire_name_to_text(text, sizeof(text), name, len) == 0);
        rd.u.name.wire = name;
        rd.u.name.len = len;
        if (rewrite(rr, &rd, buf, cap, &back) == 0) {
            check(dnswire_rdata_name(&back, &back.rr[0], name2, &len2) == 0);
            /* Compression may borrow another name's case: compare as DNS does. */
            check(dnswire_name_equal(name, len, name2, len2));
            dnswire_msg_cleanup(&back);
        }
        return;
    case DNSWIRE_TYPE_TXT:
        if (dnswire_rdata_txt(rr, txt, rr->rdlen, &len) != 0)
            return;
        check(len < rr->rdlen);
        rd.u.txt.data = txt;
        rd.u.txt.len = len;
        if (rewrite(rr, &rd, buf, cap, &back) == 0) {
            check(dnswire_rdata_txt(&back.rr[0], txt2, sizeof(txt2), &len2) == 0);
            check(len == len2 && memcmp(txt, txt2, len) == 0);
            dnswire_msg_cleanup(&back);
        }
        return;
    case DNSWIRE_TYPE_SOA:
        if (dnswire_rdata_soa(m, rr, &soa) != 0)
            return;
        rd.u.soa = &soa;
        if (rewrite(rr, &rd, buf, cap, &back) == 0) {
            check(dnswire_rdata_soa(&back, &back.rr[0], &soa2) == 0);
            check(dnswire_name_equal(soa.mname, soa.mname_len, soa2.mname, soa2.mname_len));
            check(dnswire_name_equal(soa.rname, soa.rname_len, soa2.rname, soa2.rname_len));
            check(soa.serial == soa2.serial && soa.minimum == soa2.minimum);
            dnswire_msg_cleanup(&back);
        }
        return;
    default:
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[70000];
    struct dnswire_msg m;
    char text[DNSWIRE_NAME_TEXT_MAX];
    uint16_t terr;

    /* The parse into caller storage must agree with the allocating one, failures included. */
    static struct dnswire_msg_buf mb;
    struct dnswire_msg mbm;
    int brc = dnswire_msg_parse_buf(&mbm, data, size, &mb);
    if (dnswire_msg_parse(&m, data, size) != 0) {
        check(brc != 0);
        return 0;
    }
    check(brc == 0 && mbm.qdcount == m.qdcount && mbm.ancount == m.ancount &&
          mbm.nscount == m.nscount && mbm.arcount == m.arcount && mbm.hdr.rcode == m.hdr.rcode);
    for (size_t i = 0; i < m.ancount + m.nscount + m.arcount; i++)
        check(
            mbm.rr[i].type == m.rr[i].type && mbm.rr[i].rdata == m.rr[i].rdata &&
            mbm.rr[i].rdlen == m.rr[i].rdlen &&
            dnswire_name_equal(mbm.rr[i].name, mbm.rr[i].name_len, m.rr[i].name, m.rr[i].name_len));
    dnswire_msg_cleanup(&mbm);
    for (size_t i = 0; i < m.qdcount; i++)
        check(dnswire_name_to_text(text, sizeof(text), m.qd[i].name, m.qd[i].name_len) == 0);
    for (size_t i = 0; i < m.ancount + m.nscount + m.arcount; i++) {
        const struct dnswire_rr *rr = &m.rr[i];
        check(rr->rdata_off + rr->rdlen <= size && rr->rdata == data + rr->rdata_off);
        decode_one(&m, rr, buf, sizeof(buf));
    }
    if (m.has_tsig)
        (void)dnswire_tsig_verify(&fuzz_key, &terr, data, size, NULL, 0);
    dnswire_msg_cleanup(&m);
    return 0;
}
