/* Fuzz target: a worker's running-statistics file (worker/train/statefile). Input: a control
 * byte, then the file. The control byte's low 6 bits are the model's statistics count; bit 6 seals
 * the file (sets its CRC-32C trailer) so mutations reach the header checks instead of stopping at
 * the checksum; bit 7 asks for the clock the file names, so whole loads happen too. A load either
 * fills exactly the statistics or is refused with a message, leaving them alone. */
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "fuzz/fuzz.h"
#include "worker/train/statefile.h"

enum { HEADER = 8 + 8 + 8, TRAILER = 4, GUARD = 4 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n_state = data[0] & 0x3f;
    size_t len = size - 1;
    uint8_t *file = malloc(len + 1);
    pst_fuzz_check(file != NULL, "allocation");
    memcpy(file, data + 1, len);
    if ((data[0] & 0x40) && len >= HEADER + TRAILER) {
        uint32_t crc = pst_crc32c(0, file, len - TRAILER);
        for (int i = 0; i < 4; i++)
            file[len - TRAILER + i] = (uint8_t)(crc >> (8 * i));
    }
    uint64_t clock = 7;
    if ((data[0] & 0x80) && len >= 16)
        for (int i = 0; i < 8; i++)
            clock = i == 0 ? file[8] : clock | (uint64_t)file[8 + i] << (8 * i);
    const char *path = pst_fuzz_scratch_file(file, len, ".state");
    /* the statistics and a guard past them, all of a sentinel the loader must not write over */
    float state[64 + GUARD];
    for (size_t i = 0; i < n_state + GUARD; i++)
        state[i] = -1234.5f;
    uint64_t file_clock = 0;
    pst_err_t err = {0};
    int rc = pst_statefile_load(path, clock, state, n_state, &file_clock, &err);
    for (size_t i = n_state; i < n_state + GUARD; i++)
        pst_fuzz_check(state[i] == -1234.5f, "nothing written past the statistics");
    if (rc == PST_OK) {
        pst_fuzz_check(len == HEADER + n_state * sizeof(float) + TRAILER, "a whole file loads");
        pst_fuzz_check(file_clock == clock, "the clock asked for");
        pst_fuzz_check(memcmp(state, file + HEADER, n_state * sizeof(float)) == 0,
                       "the file's statistics exactly");
    } else {
        pst_fuzz_check(err.msg[0] != '\0', "a refused state file says why");
        for (size_t i = 0; i < n_state; i++)
            pst_fuzz_check(state[i] == -1234.5f, "a refused file leaves the statistics alone");
    }
    free(file);
    return 0;
}
