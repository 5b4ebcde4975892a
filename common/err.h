/* Error codes and the caller-given message buffer that every layer reports through. */
#ifndef PST_ERR_H
#define PST_ERR_H

#include <stddef.h>

enum {
    PST_OK = 0,
    PST_ENOMEM = -1,  /* allocation failed */
    PST_EINVAL = -2,  /* bad argument or configuration value */
    PST_EIO = -3,     /* file or socket I/O failed */
    PST_EFORMAT = -4, /* malformed input file */
    PST_EPROTO = -5,  /* malformed or hostile network frame */
    PST_ERANGE = -6,  /* value or index out of range */
    PST_ENOTFOUND = -7,
    PST_ETIMEOUT = -8,
    PST_ESTATE = -9,   /* operation not valid in the current state */
    PST_ENUMERIC = -10 /* NaN or infinity where a finite number is required */
};

/* A human-readable message for the caller to print. Every function that can fail with
 * details takes an optional pst_err_t *; NULL means the caller only wants the code. */
typedef struct pst_err {
    int code;
    char msg[512];
} pst_err_t;

const char *pst_strerror(int rc);

/* Records code and message in err (if non-NULL) and returns code, so callers write
 * `return pst_err_set(err, PST_EFORMAT, "%s:%zu: bad cell", path, line);`. */
int pst_err_set(pst_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("loading config: ") for a failure with code,
 * records code in err (if non-NULL) and returns code, also when err is NULL, so callers write
 * `return pst_err_prefix(err, rc, "%s: ", path);`. */
int pst_err_prefix(pst_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The code a failed call recorded in err, or fallback when err is NULL: for constructors, which
 * return NULL rather than a code. */
int pst_err_code(const pst_err_t *err, int fallback);

void pst_err_clear(pst_err_t *err);

#endif
