/* Fuzz target: YAML configuration text. A configuration that loads and validates must dump to
 * YAML that loads back to the same dump. */
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    pst_fuzz_check(text != NULL, "allocation");
    memcpy(text, data, size);
    text[size] = '\0';
    pst_config_t cfg;
    pst_fuzz_check(pst_config_init(&cfg) == PST_OK, "defaults");
    pst_err_t err = {0};
    int rc = pst_config_load_string(&cfg, text, "fuzz", &err);
    if (rc == PST_OK)
        rc = pst_config_validate(&cfg, &err);
    if (rc == PST_OK) {
        char *dump = pst_config_to_string(&cfg);
        pst_fuzz_check(dump != NULL, "dump");
        pst_config_t again;
        pst_fuzz_check(pst_config_init(&again) == PST_OK, "defaults");
        pst_fuzz_check(pst_config_load_string(&again, dump, "dump", &err) == PST_OK,
                       "a dumped configuration loads");
        char *dump2 = pst_config_to_string(&again);
        pst_fuzz_check(dump2 != NULL && strcmp(dump, dump2) == 0, "the dump is a fixed point");
        free(dump2);
        free(dump);
        pst_config_fini(&again);
    } else {
        pst_fuzz_check(err.msg[0] != '\0', "a refused configuration says why");
    }
    pst_config_fini(&cfg);
    free(text);
    return 0;
}
