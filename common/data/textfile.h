/* Whole text files in memory, cut into line-aligned byte ranges that threads parse at once. */
#ifndef PST_COMMON_DATA_TEXTFILE_H
#define PST_COMMON_DATA_TEXTFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/* A file's bytes: mapped read-only when plain, decompressed into memory when gzip. */
typedef struct pst_text_file {
    const char *data; // (len) not NUL-terminated when mapped
    size_t len;
    void *map;      /* the mapping (NULL when data is malloc'ed or the file is empty) */
    size_t map_len; /* its length */
    char *owned;    /* malloc'ed data (gzip), or NULL */
} pst_text_file_t;

/* Opens path (plain or gzip) into *f. Errors name the path ("cannot open", read failures). */
int pst_text_file_open(pst_text_file_t *f, const char *path, pst_err_t *err);

/* Unmaps or frees the data; safe twice and on a zeroed struct. */
void pst_text_file_close(pst_text_file_t *f);

/* The number of ranges to parse len bytes with: requested (0 = the online cores) threads, but
 * with requested 0 no more than one per MiB, so small files stay on one thread; at least 1 and
 * never more than len. */
unsigned pst_text_thread_count(unsigned requested, size_t len);

/* Where range i of n over data[0..len) begins: the first line start at or after i * len / n
 * (0 for i == 0, len when no line starts there). Range i ends where range i + 1 begins, so the
 * ranges cover every line exactly once, in file order. */
size_t pst_text_range_start(const char *data, size_t len, unsigned i, unsigned n);

/* Asks for transparent huge pages over the whole 2 MiB pages inside p[0..bytes) when bytes is
 * large (fewer page faults when the memory is first written); a hint, silently ignored where
 * unsupported. */
void pst_text_advise_huge(void *p, size_t bytes);

/* Runs fn(arg) for each of n args (args + k * arg_size), on n - 1 new threads and the caller's
 * own, and returns once all are done. When a thread cannot start, its arg runs on the caller's
 * thread instead: slower, never lost. */
void pst_text_run_parallel(void (*fn)(void *arg), void *args, size_t arg_size, unsigned n);

/* With on, pst_text_run_parallel runs every arg on the caller's thread, one after another: the
 * same ranges and the same join, without a thread start per call (a fuzz target checks the ranges
 * against the serial reader on every input). Process-wide; off by default. */
void pst_text_set_inline(bool on);

#endif
