/* Scratch files for the unit tests: one private directory, created on first use, emptied and
 * removed by pst_scratch_remove (usable as a cmocka setup/teardown). */
#ifndef PST_TESTS_UNIT_SCRATCH_H
#define PST_TESTS_UNIT_SCRATCH_H

/* Creates the directory if it does not exist yet. Returns 0 (cmocka setup). */
int pst_scratch_make(void **state);
/* Removes every file in the directory and the directory. Returns 0 (cmocka teardown). */
int pst_scratch_remove(void **state);
/* The directory's path (created if needed). */
const char *pst_scratch_dir(void);
/* dir/name into buf (256 bytes); returns buf. */
const char *pst_scratch_path(char *buf, const char *name);
/* A new file in the directory whose name ends in suffix, holding text; its path stays valid
 * until pst_scratch_remove. */
const char *pst_scratch_file(const char *suffix, const char *text);

#endif
