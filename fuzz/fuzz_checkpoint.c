/* Fuzz target: server checkpoint files. Input: an optimizer byte, then a checkpoint without its
 * trailing CRC-32; the target sets the header's body length and appends the CRC, so mutations
 * reach the slice records instead of stopping at the checksum. A file that loads must hold a
 * usable shard. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz/fuzz.h"
#include "ps/checkpoint.h"

enum { HEADER_BYTES = 8 + 4 * 4 + 8 + 8, BODY_LEN_AT = 8 + 4 * 4 + 8 };

/* Inputs are decoded from memory (pst_checkpoint_load_mem); one in FILE_ONE_IN goes through a
 * file and pst_checkpoint_load, whose only other step is reading it. */
enum { FILE_ONE_IN = 1000 };

static const pst_optim_kind_t KINDS[] = {PST_OPT_SGD, PST_OPT_ADAM, PST_OPT_ADAGRAD, PST_OPT_FTRL};

/* The input's file with a consistent body length and CRC (caller frees). */
static uint8_t *sealed_file(const uint8_t *data, size_t size, size_t *len)
{
    *len = size + sizeof(uint32_t);
    uint8_t *file = malloc(*len);
    pst_fuzz_check(file != NULL, "allocation");
    memcpy(file, data, size);
    if (size >= HEADER_BYTES) {
        uint64_t body = size - HEADER_BYTES;
        memcpy(file + BODY_LEN_AT, &body, sizeof body);
    }
    uint32_t crc = (uint32_t)crc32_z(0L, file, size);
    memcpy(file + size, &crc, sizeof crc);
    return file;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    pst_optim_cfg_t optim;
    pst_optim_cfg_defaults(&optim, KINDS[data[0] % (sizeof KINDS / sizeof KINDS[0])]);
    size_t len;
    uint8_t *file = sealed_file(data + 1, size - 1, &len);
    uint64_t clock = 0;
    pst_err_t err = {0};
    pst_shard_t *shard;
    if (pst_fuzz_one_in(data, size, FILE_ONE_IN))
        shard =
            pst_checkpoint_load(pst_fuzz_scratch_file(file, len, ".ckpt"), &optim, &clock, &err);
    else
        shard = pst_checkpoint_load_mem(file, len, "fuzz.ckpt", &optim, &clock, &err);
    free(file);
    if (shard == NULL) {
        pst_fuzz_check(err.msg[0] != '\0', "a refused checkpoint says why");
        return 0;
    }
    for (size_t i = 0; i < pst_shard_count(shard); i++)
        pst_fuzz_check(pst_shard_slice(shard, i) != NULL, "every slice is there");
    pst_shard_destroy(&shard);
    return 0;
}
