/* Array allocation: resizing a malloc'ed array of n elements, with the size product checked. */
#ifndef PST_COMMON_ALLOC_H
#define PST_COMMON_ALLOC_H

#include <stddef.h>

/* Resizes the array *p (NULL or malloc'ed) to hold n elements of elem bytes (at least one
 * element is allocated, so *p is never left NULL on success). PST_OK with *p replaced; PST_ENOMEM
 * when n * elem overflows or realloc fails, *p then unchanged and still owned by the caller. */
int pst_array_resize(void **p, size_t n, size_t elem);

#endif
