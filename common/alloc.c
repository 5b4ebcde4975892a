/* Array allocation with an overflow-checked size. */
#include "common/alloc.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"

int pst_array_resize(void **p, size_t n, size_t elem)
{
    if (n == 0)
        n = 1;
    if (elem != 0 && n > SIZE_MAX / elem)
        return PST_ENOMEM;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return PST_ENOMEM;
    *p = q;
    return PST_OK;
}
