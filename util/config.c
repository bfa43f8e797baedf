/*
 * config.c - the state directory's configuration file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "err.h"

void config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->key_type, sizeof(cfg->key_type), "ec256");
    snprintf(cfg->dns_listen, sizeof(cfg->dns_listen), "127.0.0.1:5300");
}

/* get_str copies an optional string member; CF_ECONFIG if too long or not a string. */
static int get_str(json_t *obj, const char *key, char *dst, size_t n, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= n) {
        snprintf(err, errlen, "config.json: \"%s\" must be a string shorter than %zu octets", key,
                 n);
        return CF_ECONFIG;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int config_load(struct config *cfg, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    json_error_t jerr;
    config_init(cfg);
    snprintf(path, sizeof(path), "%s/config.json", dir);
    if (access(path, F_OK) != 0) {
        snprintf(err, errlen, "%s: not initialized (run `certfleet init` first)", dir);
        return -ENOENT;
    }
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        return CF_ECONFIG;
    }
    int rc = CF_ECONFIG;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        goto out_decref;
    }
    struct {
        const char *key;
        char *dst;
        size_t n;
    } strs[] = {
        {"validation_zone", cfg->validation_zone, sizeof(cfg->validation_zone)},
        {"directory", cfg->directory, sizeof(cfg->directory)},
        {"ca_bundle", cfg->ca_bundle, sizeof(cfg->ca_bundle)},
        {"email", cfg->email, sizeof(cfg->email)},
        {"key_type", cfg->key_type, sizeof(cfg->key_type)},
        {"eab_kid", cfg->eab_kid, sizeof(cfg->eab_kid)},
        {"eab_hmac_file", cfg->eab_hmac_file, sizeof(cfg->eab_hmac_file)},
        {"resolver", cfg->resolver, sizeof(cfg->resolver)},
        {"dns_listen", cfg->dns_listen, sizeof(cfg->dns_listen)},
        {"rfc2136_server", cfg->rfc2136_server, sizeof(cfg->rfc2136_server)},
        {"tsig_key_file", cfg->tsig_key_file, sizeof(cfg->tsig_key_file)},
        {"rate_limits", cfg->rate_limits, sizeof(cfg->rate_limits)},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (get_str(root, strs[i].key, strs[i].dst, strs[i].n, err, errlen))
            goto out_decref;
    json_t *port = json_object_get(root, "dns_auth_port");
    if (port) {
        if (!json_is_integer(port) || json_integer_value(port) < 1 ||
            json_integer_value(port) > 65535) {
            snprintf(err, errlen, "%s: \"dns_auth_port\" must be a port number", path);
            goto out_decref;
        }
        cfg->dns_auth_port = (int)json_integer_value(port);
    }
    json_t *targets = json_object_get(root, "cdn_targets");
    if (targets) {
        if (!json_is_array(targets) || json_array_size(targets) > CONFIG_MAX_CDN_TARGETS) {
            snprintf(err, errlen, "%s: \"cdn_targets\" must be an array of at most %d strings",
                     path, CONFIG_MAX_CDN_TARGETS);
            goto out_decref;
        }
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t)
        {
            if (!json_is_string(t) || json_string_length(t) >= sizeof(cfg->cdn_targets[0])) {
                snprintf(err, errlen, "%s: cdn_targets[%zu] is not a short string", path, i);
                goto out_decref;
            }
            memcpy(cfg->cdn_targets[i], json_string_value(t), json_string_length(t) + 1);
        }
        cfg->n_cdn_targets = json_array_size(targets);
    }
    json_t *nss = json_object_get(root, "validation_ns");
    if (nss) {
        if (!json_is_array(nss) || json_array_size(nss) > CONFIG_MAX_VALIDATION_NS) {
            snprintf(err, errlen, "%s: \"validation_ns\" must be an array of at most %d strings",
                     path, CONFIG_MAX_VALIDATION_NS);
            goto out_decref;
        }
        size_t i;
        json_t *t;
        json_array_foreach(nss, i, t)
        {
            if (!json_is_string(t) || json_string_length(t) >= sizeof(cfg->validation_ns[0])) {
                snprintf(err, errlen, "%s: validation_ns[%zu] is not a short string", path, i);
                goto out_decref;
            }
            memcpy(cfg->validation_ns[i], json_string_value(t), json_string_length(t) + 1);
        }
        cfg->n_validation_ns = json_array_size(nss);
    }
    if (!cfg->validation_zone[0] || !cfg->directory[0]) {
        snprintf(err, errlen, "%s: validation_zone and directory are required", path);
        goto out_decref;
    }
    rc = 0;
out_decref:
    json_decref(root);
    return rc;
}

int config_save(const struct config *cfg, const char *dir, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    json_t *root = json_object();
    json_t *targets = json_array();
    int rc = CF_ECONFIG;
#define SET_OPT(key, val)                                                                          \
    do {                                                                                           \
        if ((val)[0])                                                                              \
            json_object_set_new(root, key, json_string(val));                                      \
    } while (0)
    SET_OPT("validation_zone", cfg->validation_zone);
    SET_OPT("directory", cfg->directory);
    SET_OPT("ca_bundle", cfg->ca_bundle);
    SET_OPT("email", cfg->email);
    SET_OPT("key_type", cfg->key_type);
    SET_OPT("eab_kid", cfg->eab_kid);
    SET_OPT("eab_hmac_file", cfg->eab_hmac_file);
    SET_OPT("resolver", cfg->resolver);
    SET_OPT("dns_listen", cfg->dns_listen);
    SET_OPT("rfc2136_server", cfg->rfc2136_server);
    SET_OPT("tsig_key_file", cfg->tsig_key_file);
    SET_OPT("rate_limits", cfg->rate_limits);
#undef SET_OPT
    if (cfg->dns_auth_port)
        json_object_set_new(root, "dns_auth_port", json_integer(cfg->dns_auth_port));
    for (size_t i = 0; i < cfg->n_cdn_targets; i++)
        json_array_append_new(targets, json_string(cfg->cdn_targets[i]));
    json_object_set(root, "cdn_targets", targets);
    if (cfg->n_validation_ns) {
        json_t *nss = json_array();
        for (size_t i = 0; i < cfg->n_validation_ns; i++)
            json_array_append_new(nss, json_string(cfg->validation_ns[i]));
        json_object_set_new(root, "validation_ns", nss);
    }

    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !text) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out_free;
    }
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto out_free;
    }
    rc = 0;
out_free:
    free(text);
    json_decref(targets);
    json_decref(root);
    return rc;
}

int config_parse_addr(const char *s, char *host, size_t hostlen, int *port, int dflt)
{
    char tmp[128];
    const char *p;
    unsigned char addr[16];
    if (strlen(s) >= sizeof(tmp) || !*s)
        return CF_ECONFIG;
    *port = dflt;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (size_t)(close - s - 1) >= sizeof(tmp))
            return CF_ECONFIG;
        memcpy(tmp, s + 1, (size_t)(close - s - 1));
        tmp[close - s - 1] = '\0';
        p = close + 1;
        if (*p == ':')
            p++;
        else if (*p)
            return CF_ECONFIG;
    } else if (strchr(s, ':') && strchr(s, ':') != strrchr(s, ':')) {
        snprintf(tmp, sizeof(tmp), "%s", s); /* a bare IPv6 address, no port */
        p = "";
    } else {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        p = colon ? colon + 1 : "";
    }
    if (inet_pton(AF_INET, tmp, addr) != 1 && inet_pton(AF_INET6, tmp, addr) != 1)
        return CF_ECONFIG;
    if (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (*end || v < 1 || v > 65535)
            return CF_ECONFIG;
        *port = (int)v;
    }
    if (strlen(tmp) >= hostlen)
        return CF_ECONFIG;
    memcpy(host, tmp, strlen(tmp) + 1);
    return 0;
}
