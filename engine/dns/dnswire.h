/*
 * dnswire.h - the DNS message codec: names, a bounds-checked message parser,
 * a writer with name compression, the query and RFC 2136 UPDATE builders,
 * and TSIG (RFC 8945, HMAC-SHA256).
 *
 * DESIGN.md §6: DNS messages for the embedded server and for RFC 2136 are
 * composed by the project's own code (no ldns). Everything here works on
 * caller-owned memory; only dnswire_msg_parse allocates (its arrays, freed by
 * dnswire_msg_cleanup). Nothing here does network I/O.
 *
 * Names are handled in uncompressed wire form (length-prefixed labels ending
 * with the root label, at most DNSWIRE_NAME_MAX octets) unless a function
 * says "text". Every length read from a message is checked: a malformed
 * message gives CF_EPARSE, never a read outside the message. Misuse by the
 * caller (a writer section out of order, an invalid wire name handed to the
 * writer, a decoder used on the wrong type) gives -EINVAL. There is no
 * global state: every function may run on any thread.
 */
#ifndef CF_ENGINE_DNS_DNSWIRE_H
#define CF_ENGINE_DNS_DNSWIRE_H

#include <stddef.h>
#include <stdint.h>

/* RFC 1035 §2.3.4: 63 octets a label, 255 octets a name in wire form. */
#define DNSWIRE_LABEL_MAX 63
#define DNSWIRE_NAME_MAX 255
/* A text name: every octet escaped as \DDD, dots between labels, NUL. */
#define DNSWIRE_NAME_TEXT_MAX 1024
/* RFC 1035 §4.1.1: the fixed header is 12 octets. */
#define DNSWIRE_HEADER_LEN 12
/* RFC 1035 §4.2.1: UDP messages are limited to 512 octets without EDNS. */
#define DNSWIRE_UDP_MIN 512
/* Compression pointers followed when reading one name (loop protection). */
#define DNSWIRE_MAX_HOPS 128
/* Names remembered by a writer for compression. */
#define DNSWIRE_WRITER_PTRS 128
/* RFC 8945 §5.2.3: the fudge used when signing, in seconds. */
#define DNSWIRE_TSIG_FUDGE 300
/* HMAC-SHA256 output; the only TSIG algorithm supported. */
#define DNSWIRE_TSIG_MAC_MAX 32
/* Longest TSIG secret accepted, in octets after base64 decoding. */
#define DNSWIRE_TSIG_SECRET_MAX 128

/* RR types (RFC 1035 §3.2.2, RFC 3596, RFC 6672, RFC 6891, RFC 8945). */
enum {
    DNSWIRE_TYPE_A = 1,
    DNSWIRE_TYPE_NS = 2,
    DNSWIRE_TYPE_CNAME = 5,
    DNSWIRE_TYPE_SOA = 6,
    DNSWIRE_TYPE_PTR = 12,
    DNSWIRE_TYPE_MX = 15,
    DNSWIRE_TYPE_TXT = 16,
    DNSWIRE_TYPE_AAAA = 28,
    DNSWIRE_TYPE_DNAME = 39,
    DNSWIRE_TYPE_OPT = 41,
    DNSWIRE_TYPE_TSIG = 250,
    DNSWIRE_TYPE_ANY = 255,
};

/* Classes (RFC 1035 §3.2.4, RFC 2136 §1.3 for NONE). */
enum {
    DNSWIRE_CLASS_IN = 1,
    DNSWIRE_CLASS_NONE = 254,
    DNSWIRE_CLASS_ANY = 255,
};

/* Opcodes (RFC 1035 §4.1.1, RFC 2136 §1.3). */
enum {
    DNSWIRE_OPCODE_QUERY = 0,
    DNSWIRE_OPCODE_UPDATE = 5,
};

/* Response codes (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6891 §9, RFC 8945 §3). */
enum {
    DNSWIRE_RCODE_NOERROR = 0,
    DNSWIRE_RCODE_FORMERR = 1,
    DNSWIRE_RCODE_SERVFAIL = 2,
    DNSWIRE_RCODE_NXDOMAIN = 3,
    DNSWIRE_RCODE_NOTIMP = 4,
    DNSWIRE_RCODE_REFUSED = 5,
    DNSWIRE_RCODE_YXDOMAIN = 6,
    DNSWIRE_RCODE_YXRRSET = 7,
    DNSWIRE_RCODE_NXRRSET = 8,
    DNSWIRE_RCODE_NOTAUTH = 9,
    DNSWIRE_RCODE_NOTZONE = 10,
    DNSWIRE_RCODE_BADVERS = 16, /* in the OPT extended rcode */
    DNSWIRE_RCODE_BADSIG = 16,  /* in the TSIG error field */
    DNSWIRE_RCODE_BADKEY = 17,
    DNSWIRE_RCODE_BADTIME = 18,
    DNSWIRE_RCODE_BADTRUNC = 22,
};

/*
 * Message sections. In an UPDATE (RFC 2136 §2) they are the zone,
 * prerequisite, update and additional sections.
 */
enum dnswire_section {
    DNSWIRE_SECTION_QUESTION = 0,
    DNSWIRE_SECTION_ANSWER = 1,
    DNSWIRE_SECTION_AUTHORITY = 2,
    DNSWIRE_SECTION_ADDITIONAL = 3,
};

/*
 * struct dnswire_header: RFC 1035 §4.1.1, with AD and CD (RFC 4035 §3.2).
 * Flags are 0 or 1. The counts are filled in by the parser and ignored by
 * the writer, which keeps its own.
 */
struct dnswire_header {
    uint16_t id;
    uint8_t qr;
    uint8_t opcode;
    uint8_t aa;
    uint8_t tc;
    uint8_t rd;
    uint8_t ra;
    uint8_t ad;
    uint8_t cd;
    /* Four bits in the header; up to twelve with the OPT extended rcode. */
    uint16_t rcode;
    uint16_t qdcount;
    uint16_t ancount;
    uint16_t nscount;
    uint16_t arcount;
};

struct dnswire_question {
    uint8_t name[DNSWIRE_NAME_MAX];
    size_t name_len;
    uint16_t qtype;
    uint16_t qclass;
};

/*
 * struct dnswire_rr is one resource record of a parsed message. The name is
 * decompressed (case as sent). rdata points into the parsed message and
 * lives as long as it; rdata_off is its offset in the message, which the
 * name decoders need to follow compression pointers.
 */
struct dnswire_rr {
    uint8_t name[DNSWIRE_NAME_MAX];
    size_t name_len;
    uint16_t type, class;
    /* RFC 2181 §8: a TTL with the top bit set is read as 0 (OPT: raw flags). */
    uint32_t ttl;
    const uint8_t *rdata;
    size_t rdlen;
    size_t rdata_off;
    enum dnswire_section section;
};

/* EDNS0 (RFC 6891 §6.1) as found in a message's OPT record. */
struct dnswire_edns {
    int present;
    /* As sent; RFC 6891 §6.2.5 says to read values below 512 as 512. */
    uint16_t udp_size;
    uint8_t version;
    uint8_t do_bit;
    /* The options (RFC 6891 §6.1.2), checked to be well-formed. */
    const uint8_t *options;
    size_t options_len;
};

/*
 * struct dnswire_msg is a parsed message (RFC 1035 §4). The records of all
 * three sections are in one array, rr, in message order: rr[0 .. ancount)
 * is the answer section, then nscount authority records, then arcount
 * additional records (each also carries its section). The OPT and TSIG
 * records stay in the array. Pointers into the message bytes (pkt) are only
 * valid while those bytes are.
 */
struct dnswire_msg {
    const uint8_t *pkt;
    size_t len;
    /* hdr.rcode includes the extended rcode when an OPT record is present. */
    struct dnswire_header hdr;
    struct dnswire_question *qd;
    size_t qdcount;
    struct dnswire_rr *rr;
    size_t ancount, nscount, arcount;
    struct dnswire_edns edns;
    /* RFC 8945 §5.1: a TSIG record can only be the last record. */
    int has_tsig;
    size_t tsig_rr_off; /* where the TSIG record starts in pkt */
    int borrowed;       /* qd and rr are the caller's struct dnswire_msg_buf: not freed */
};

/*
 * struct dnswire_msg_buf is caller storage for dnswire_msg_parse_buf: room
 * for the question and records of a small answer, so parsing one allocates
 * nothing.
 */
#define DNSWIRE_MSG_BUF_RR 8
struct dnswire_msg_buf {
    struct dnswire_question qd[1];
    struct dnswire_rr rr[DNSWIRE_MSG_BUF_RR];
};

/* SOA RDATA (RFC 1035 §3.3.13). Names in wire form. */
struct dnswire_soa {
    uint8_t mname[DNSWIRE_NAME_MAX];
    size_t mname_len;
    uint8_t rname[DNSWIRE_NAME_MAX];
    size_t rname_len;
    uint32_t serial, refresh, retry, expire, minimum;
};

/*
 * struct dnswire_rdata is the RDATA handed to the writer, by type: a, aaaa,
 * name (NS, CNAME, DNAME, PTR), soa, txt (one value of any length, split
 * into 255-octet character-strings), and raw (any other type: written as
 * given, never compressed). Pointers are borrowed for the call only.
 */
struct dnswire_rdata {
    uint16_t type;
    union {
        uint8_t a[4];
        uint8_t aaaa[16];
        struct {
            const uint8_t *wire;
            size_t len;
        } name;
        const struct dnswire_soa *soa;
        struct {
            const uint8_t *data;
            size_t len;
        } txt;
        struct {
            const uint8_t *data;
            size_t len;
        } raw;
    } u;
};

/*
 * struct dnswire_writer composes one message into a fixed caller buffer.
 * All fields are private. Every write either succeeds whole or leaves the
 * message as it was (CF_ETOOBIG when out of room), and the buffer always
 * holds a complete message of w->len octets with correct counts.
 */
struct dnswire_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint16_t count[4];
    enum dnswire_section section; /* the latest section written to */
    size_t qd_end;                /* end of the question section */
    uint16_t rcode;               /* full rcode, for the OPT record */
    size_t nptrs;
    uint16_t ptr_off[DNSWIRE_WRITER_PTRS];
    uint8_t ptr_len[DNSWIRE_WRITER_PTRS];
};

/* RFC 2136 §2.5 update operations. */
enum dnswire_update_op {
    DNSWIRE_UPDATE_ADD,          /* §2.5.1: add an RR (class IN, with TTL) */
    DNSWIRE_UPDATE_DELETE_RRSET, /* §2.5.2: delete the RRset of rdata.type */
    DNSWIRE_UPDATE_DELETE_NAME,  /* §2.5.3: delete every RRset at the name */
    DNSWIRE_UPDATE_DELETE_RR,    /* §2.5.4: delete one RR (class NONE) */
};

/*
 * One change of an UPDATE message. name is a wire name inside the zone;
 * rdata holds the type for every op but DELETE_NAME, and the data for ADD
 * and DELETE_RR.
 */
struct dnswire_update {
    const uint8_t *name;
    size_t name_len;
    struct dnswire_rdata rdata;
    enum dnswire_update_op op;
    uint32_t ttl; /* DNSWIRE_UPDATE_ADD only */
};

/* A TSIG key (RFC 8945 §4): its wire name (lower case) and secret. */
struct dnswire_tsig_key {
    uint8_t name[DNSWIRE_NAME_MAX];
    size_t name_len;
    uint8_t secret[DNSWIRE_TSIG_SECRET_MAX];
    size_t secret_len;
};

/* The MAC of a signed message, kept to verify the answer to it. */
struct dnswire_tsig_mac {
    uint8_t mac[DNSWIRE_TSIG_MAC_MAX];
    size_t len;
    uint64_t time_signed;
};

/* ---- Names ---- */

/*
 * dnswire_name_from_text converts a presentation-format name (RFC 1035
 * §5.1: "\X" and "\DDD" escapes, trailing dot optional, "." the root) into
 * lower-cased wire form in out (DNSWIRE_NAME_MAX octets), its length in
 * *out_len. Returns 0, or CF_EPARSE for an empty name or label, a bad escape,
 * an unescaped character outside printable ASCII, a label over 63 octets or a
 * name over 255 wire octets.
 */
int dnswire_name_from_text(uint8_t *out, size_t *out_len, const char *text);

/*
 * dnswire_name_to_text writes the wire name (wire_len octets) as text into
 * out (cap octets, NUL-terminated): no trailing dot, "." for the root,
 * special and non-printable octets escaped. Returns 0, CF_EPARSE for an
 * invalid wire name, or CF_ETOOBIG when cap is too small
 * (DNSWIRE_NAME_TEXT_MAX always suffices).
 */
int dnswire_name_to_text(char *out, size_t cap, const uint8_t *wire, size_t wire_len);

/*
 * dnswire_name_check returns 0 when wire (len octets) is one uncompressed
 * wire name: labels of at most 63 octets ending exactly at len with the root
 * label, at most 255 octets. Otherwise CF_EPARSE.
 */
int dnswire_name_check(const uint8_t *wire, size_t len);

/*
 * dnswire_name_equal returns 1 when two valid wire names are equal ignoring
 * ASCII case (RFC 4343 §3), else 0.
 */
int dnswire_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/*
 * dnswire_name_in_zone returns 1 when the valid wire name is zone or below
 * it (at a label boundary, ignoring case), else 0.
 */
int dnswire_name_in_zone(const uint8_t *name, size_t name_len, const uint8_t *zone,
                         size_t zone_len);

/*
 * dnswire_read_name reads the possibly compressed name at *off in msg
 * (msglen octets) into out_wire (DNSWIRE_NAME_MAX octets), its length in
 * *out_len, and moves *off past the name as it appears at *off. RFC 1035
 * §4.1.4: pointers are followed, each one only to before the label run that
 * contains it (so never forward and never in a loop), at most
 * DNSWIRE_MAX_HOPS of them. Returns 0, or CF_EPARSE for a name running past
 * msglen, a forward or looping pointer, too many hops, a reserved label
 * type, or a name over 255 octets; *off is unchanged then.
 */
int dnswire_read_name(const uint8_t *msg, size_t msglen, size_t *off, uint8_t *out_wire,
                      size_t *out_len);

/* ---- Parser ---- */

/*
 * dnswire_header_parse reads the 12-octet header of pkt into *h, so a caller
 * can check the ID and TC even when the body is malformed. Returns 0 or
 * CF_EPARSE when len < 12.
 */
int dnswire_header_parse(struct dnswire_header *h, const uint8_t *pkt, size_t len);

/*
 * dnswire_msg_parse parses the whole message pkt (len octets) into *m, which
 * must be released with dnswire_msg_cleanup after a success (after a failure
 * there is nothing to release, and calling it is harmless). The records point
 * into pkt, which must outlive *m. Returns 0 or CF_EPARSE: truncated header,
 * question or record, counts claiming more records than len can hold, rdlen
 * past the end, malformed names, an OPT record outside the additional
 * section, not owned by the root, repeated or with malformed options, a TSIG
 * record that is not the last record, or octets after the last record.
 */
int dnswire_msg_parse(struct dnswire_msg *m, const uint8_t *pkt, size_t len);

/*
 * dnswire_msg_parse_buf is dnswire_msg_parse with the question and records
 * in buf when they fit (one question, DNSWIRE_MSG_BUF_RR records), else
 * allocated as there. buf must outlive *m; dnswire_msg_cleanup is still
 * called after a success.
 */
int dnswire_msg_parse_buf(struct dnswire_msg *m, const uint8_t *pkt, size_t len,
                          struct dnswire_msg_buf *buf);

/* dnswire_msg_cleanup frees what dnswire_msg_parse allocated; m may be zeroed. */
void dnswire_msg_cleanup(struct dnswire_msg *m);

/*
 * dnswire_rdata_a copies the address of an A record into out. Returns 0,
 * CF_EPARSE when rdlen is not 4, -EINVAL when rr is not an A record.
 */
int dnswire_rdata_a(const struct dnswire_rr *rr, uint8_t out[4]);

/* dnswire_rdata_aaaa is dnswire_rdata_a for AAAA (16 octets, RFC 3596 §2.2). */
int dnswire_rdata_aaaa(const struct dnswire_rr *rr, uint8_t out[16]);

/*
 * dnswire_rdata_name decodes the target of an NS, CNAME, DNAME or PTR record
 * of message m, decompressed, into out (DNSWIRE_NAME_MAX octets). Returns 0,
 * CF_EPARSE when the name is malformed or does not fill the RDATA exactly,
 * -EINVAL for another type.
 */
int dnswire_rdata_name(const struct dnswire_msg *m, const struct dnswire_rr *rr, uint8_t *out,
                       size_t *out_len);

/*
 * dnswire_rdata_txt concatenates the character-strings of a TXT record
 * (RFC 1035 §3.3.14) into out (cap octets), their total length in *out_len.
 * Returns 0, CF_EPARSE for an empty RDATA or a string running past it,
 * CF_ETOOBIG when cap is too small (rdlen octets always suffice), -EINVAL
 * for another type.
 */
int dnswire_rdata_txt(const struct dnswire_rr *rr, uint8_t *out, size_t cap, size_t *out_len);

/*
 * dnswire_rdata_soa decodes an SOA record of message m into *out. Returns 0,
 * CF_EPARSE when malformed or not filling the RDATA exactly, -EINVAL for
 * another type.
 */
int dnswire_rdata_soa(const struct dnswire_msg *m, const struct dnswire_rr *rr,
                      struct dnswire_soa *out);

/*
 * dnswire_rcode_str returns a static name for an rcode ("NXDOMAIN"), or
 * "UNKNOWN". 16 is named "BADVERS", its meaning in a header and OPT record;
 * in a TSIG error field it means BADSIG.
 */
const char *dnswire_rcode_str(uint16_t rcode);

/* ---- Writer ---- */

/*
 * dnswire_writer_init prepares w to write into buf (cap octets, borrowed
 * until the writer is no longer used). dnswire_write_header comes first.
 */
void dnswire_writer_init(struct dnswire_writer *w, uint8_t *buf, size_t cap);

/*
 * dnswire_write_header writes the header (id and flags of h; the counts are
 * the writer's). Called again later, it rewrites id and flags in place (to
 * set an rcode once known). Returns 0 or CF_ETOOBIG.
 */
int dnswire_write_header(struct dnswire_writer *w, const struct dnswire_header *h);

/*
 * dnswire_write_question appends a question (RFC 1035 §4.1.2); the name is
 * compressed against names already written. Returns 0, CF_ETOOBIG, or
 * -EINVAL after a record was written or for an invalid name.
 */
int dnswire_write_question(struct dnswire_writer *w, const uint8_t *name, size_t name_len,
                           uint16_t qtype, uint16_t qclass);

/*
 * dnswire_write_rr appends a record (RFC 1035 §4.1.3) to section sec, which
 * must not come before the sections already written. The owner name is
 * compressed; names inside NS, CNAME, PTR and SOA RDATA too (RFC 3597 §4
 * allows it for RFC 1035 types only); DNAME targets never (RFC 6672 §2.5).
 * A TXT value longer than 255 octets is split into several
 * character-strings. Returns 0, CF_ETOOBIG, or -EINVAL (section order,
 * invalid name, RDATA over 65535 octets).
 */
int dnswire_write_rr(struct dnswire_writer *w, enum dnswire_section sec, const uint8_t *name,
                     size_t name_len, uint16_t rclass, uint32_t ttl,
                     const struct dnswire_rdata *rd);

/*
 * dnswire_write_opt appends the EDNS0 OPT record (RFC 6891 §6.1.2) to the
 * additional section: version 0, no options, the given UDP payload size and
 * DO bit, and the upper eight bits of the header's rcode as the extended
 * rcode. Returns 0, CF_ETOOBIG or -EINVAL (section order).
 */
int dnswire_write_opt(struct dnswire_writer *w, uint16_t udp_size, int do_bit);

/*
 * dnswire_writer_truncate turns the message into a truncated UDP answer
 * (RFC 1035 §4.1.1, RFC 2181 §9): TC set, everything after the question
 * section dropped. A responder calls it when a write fails with CF_ETOOBIG,
 * then adds its OPT record again (RFC 6891 §7). Returns 0, or -EINVAL when
 * no header was written.
 */
int dnswire_writer_truncate(struct dnswire_writer *w);

/*
 * dnswire_udp_limit returns how large a UDP answer to the parsed query q may
 * be: 512 without EDNS (RFC 1035 §4.2.1), else its advertised payload size
 * capped at server_max, never below 512 (RFC 6891 §6.2.5).
 */
size_t dnswire_udp_limit(const struct dnswire_msg *q, size_t server_max);

/* ---- Builders ---- */

/*
 * dnswire_build_query writes a standard query for the text name and qtype,
 * class IN, into out (cap octets), its length in *len. rd sets the RD bit
 * (0 to ask an authoritative server directly); edns_udp_size, when not 0,
 * adds an OPT record advertising it. Returns 0, CF_EPARSE for an invalid
 * name, or CF_ETOOBIG.
 */
int dnswire_build_query(uint8_t *out, size_t cap, size_t *len, uint16_t id, const char *name,
                        uint16_t qtype, int rd, uint16_t edns_udp_size);

/*
 * dnswire_build_update writes an RFC 2136 UPDATE for the wire name zone into
 * out (cap octets), its length in *len: the zone section (§2.3: zone, SOA,
 * IN), no prerequisites, and the n changes in order in the update section
 * (§2.5). Returns 0, CF_ETOOBIG, or -EINVAL for an invalid name, a name
 * outside the zone (§3.4.1.3 would refuse it as NOTZONE) or an unknown op.
 */
int dnswire_build_update(uint8_t *out, size_t cap, size_t *len, uint16_t id, const uint8_t *zone,
                         size_t zone_len, const struct dnswire_update *changes, size_t n);

/* ---- TSIG (RFC 8945, HMAC-SHA256 only) ---- */

/*
 * dnswire_tsig_key_parse reads one key from the text of a key file (len
 * octets): BIND's tsig-keygen form `key "name" { algorithm hmac-sha256;
 * secret "base64"; };`, knot's keymgr -t form (YAML `key: - id: name
 * algorithm: hmac-sha256 secret: base64`, also inside a whole knot.conf),
 * or one line `name:base64` or `hmac-sha256:name:base64`. Comments (#
 * everywhere; // and C-style comments in the BIND form) are skipped.
 * Returns 0, or CF_ECONFIG with *reason set to a static sentence saying what
 * is wrong (unknown form, more than one key, missing name, algorithm or
 * secret, an algorithm other than hmac-sha256, invalid name, invalid
 * base64, empty or over-long secret). On failure the key is wiped.
 */
int dnswire_tsig_key_parse(struct dnswire_tsig_key *key, const char *text, size_t len,
                           const char **reason);

/*
 * dnswire_tsig_key_load reads the key file at path (at most 64 KiB) with
 * dnswire_tsig_key_parse. Returns 0, a negated errno (reason "cannot read the
 * key file"), CF_ETOOBIG, or CF_ECONFIG.
 */
int dnswire_tsig_key_load(struct dnswire_tsig_key *key, const char *path, const char **reason);

/* dnswire_tsig_key_cleanup wipes the secret. */
void dnswire_tsig_key_cleanup(struct dnswire_tsig_key *key);

/*
 * dnswire_tsig_sign signs the complete message msg (*len octets, cap octets
 * of room) with key, time signed now (seconds since the epoch) and fudge
 * DNSWIRE_TSIG_FUDGE, appends the TSIG record and counts it in ARCOUNT
 * (RFC 8945 §4.2, §5.1). request is NULL when signing a request, or the MAC
 * of the request when signing its response (§5.3). The new MAC goes to *mac
 * when mac is not NULL, to verify the response later. The message must not
 * already be signed. Returns 0, CF_ETOOBIG, CF_EPARSE for a malformed
 * message, -EINVAL for an invalid key, or CF_ECRYPTO.
 */
int dnswire_tsig_sign(const struct dnswire_tsig_key *key, uint8_t *msg, size_t cap, size_t *len,
                      uint64_t now, const struct dnswire_tsig_mac *request,
                      struct dnswire_tsig_mac *mac);

/*
 * dnswire_tsig_verify checks the TSIG record of msg (len octets) against key
 * (RFC 8945 §5.2, §5.3.2): a response to a request whose MAC is *request, or
 * a request when request is NULL. The MAC is checked before the time, which
 * must be within the record's fudge of now. The record's error field goes to
 * *tsig_error when tsig_error is not NULL (0 when there is no record).
 * Returns 0 when signed by key, valid, in time and with error 0; CF_EPARSE
 * when malformed; CF_EPROTO when unsigned, signed by another key or
 * algorithm, with a wrong or truncated MAC, out of time, or with a non-zero
 * error (BADSIG, BADKEY, BADTIME... in *tsig_error); CF_ECRYPTO.
 */
int dnswire_tsig_verify(const struct dnswire_tsig_key *key, uint16_t *tsig_error,
                        const uint8_t *msg, size_t len, const struct dnswire_tsig_mac *request,
                        uint64_t now);

#endif
