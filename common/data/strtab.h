/* String table: interns byte strings and gives each distinct one a dense code 0, 1, 2, ... */
#ifndef PST_COMMON_DATA_STRTAB_H
#define PST_COMMON_DATA_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct pst_strtab {
    char **strs;     // (n) NUL-terminated copies, in order of first appearance
    size_t *lens;    // (n)
    size_t n, cap;   /* strings held, room in strs */
    uint32_t *slots; // (n_slots) code + 1 of the string hashed there, 0 = empty
    size_t n_slots;
} pst_strtab_t;

void pst_strtab_init(pst_strtab_t *t);
void pst_strtab_fini(pst_strtab_t *t);

/* Code of s[0..len), adding it if new. PST_OK with *code set, or PST_ENOMEM / PST_ERANGE (more
 * than 2^31 strings). */
int pst_strtab_intern(pst_strtab_t *t, const char *s, size_t len, uint32_t *code);

/* Code of s[0..len), or -1 when it is not in the table. */
long pst_strtab_find(const pst_strtab_t *t, const char *s, size_t len);

#endif
