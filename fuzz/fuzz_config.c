/* Fuzz target: YAML configuration text. A configuration that loads and validates must dump to
 * YAML that loads back to the same dump. Every input starts from the defaults: built once (the
 * key table parsed as YAML is most of an input's cost) and copied, which must dump the same as a
 * fresh pst_config_init. */
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "fuzz/fuzz.h"

static const pst_config_t *defaults(void)
{
    static pst_config_t d;
    static int ready;
    if (!ready) {
        pst_fuzz_check(pst_config_init(&d) == PST_OK, "defaults");
        ready = 1;
    }
    return &d;
}

/* cfg (zeroed or finished) as the defaults. */
static void from_defaults(pst_config_t *cfg)
{
    pst_err_t err = {0};
    memset(cfg, 0, sizeof *cfg);
    pst_fuzz_check(pst_config_copy_prefix(cfg, defaults(), "", &err) == PST_OK, "defaults copy");
}

static void check_copy_is_init(void)
{
    static int done;
    if (done++)
        return;
    pst_config_t copy, fresh;
    from_defaults(&copy);
    pst_fuzz_check(pst_config_init(&fresh) == PST_OK, "defaults");
    char *a = pst_config_to_string(&copy), *b = pst_config_to_string(&fresh);
    pst_fuzz_check(a && b && strcmp(a, b) == 0, "copied defaults are the defaults");
    free(a);
    free(b);
    pst_config_fini(&copy);
    pst_config_fini(&fresh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_copy_is_init();
    char *text = malloc(size + 1);
    pst_fuzz_check(text != NULL, "allocation");
    memcpy(text, data, size);
    text[size] = '\0';
    pst_config_t cfg;
    from_defaults(&cfg);
    pst_err_t err = {0};
    int rc = pst_config_load_string(&cfg, text, "fuzz", &err);
    if (rc == PST_OK)
        rc = pst_config_validate(&cfg, &err);
    if (rc == PST_OK) {
        char *dump = pst_config_to_string(&cfg);
        pst_fuzz_check(dump != NULL, "dump");
        pst_config_t again;
        from_defaults(&again);
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
