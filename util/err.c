/*
 * err.c - messages for the project's error codes.
 */
#include <string.h>

#include "err.h"

const char *cf_strerror(int err)
{
    if (err == 0)
        return "success";
    switch (err) {
#define CF_ERR_MSG(name, msg)                                                                      \
    case CF_E##name:                                                                               \
        return msg;
        CF_ERR_MAP(CF_ERR_MSG)
#undef CF_ERR_MSG
    default:
        break;
    }
    if (err < 0 && err > CF_ERR_BASE)
        return strerror(-err);
    return "unknown error";
}

const char *cf_errname(int err)
{
    if (err == 0)
        return "OK";
    switch (err) {
#define CF_ERR_NAME(name, msg)                                                                     \
    case CF_E##name:                                                                               \
        return "CF_E" #name;
        CF_ERR_MAP(CF_ERR_NAME)
#undef CF_ERR_NAME
    default:
        break;
    }
    if (err < 0 && err > CF_ERR_BASE) {
        const char *n = strerrorname_np(-err);
        return n ? n : "ERRNO";
    }
    return "UNKNOWN";
}
