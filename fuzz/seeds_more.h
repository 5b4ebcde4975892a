/* Seeds of the statefile, fedcontract and libpstrain targets (seeds_more.c). */
#ifndef PST_FUZZ_SEEDS_MORE_H
#define PST_FUZZ_SEEDS_MORE_H

void pst_fuzz_more_seeds(const char *root);

#endif
