/* Fuzz target: the federated contract, the model a federated server sends each site at join time
 * (a model-file message carrying the server's configuration). A site opens it as
 * pst_fedjoin_model_open does, then builds the contract's layer stack from that configuration
 * and the model itself: each step either succeeds or is refused with a message. */
#include <string.h>

#include "app/fed/fedjoin.h"
#include "fuzz/fuzz.h"
#include "worker/model/modelspec.h"

enum { ROWS = 2 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pst_config_t site;
    static int ready;
    if (!ready) { /* the site's own configuration: the same for every input */
        pst_fuzz_check(pst_config_init(&site) == PST_OK, "defaults");
        ready = 1;
    }
    pst_fedjoin_model_t m;
    memset(&m, 0, sizeof m);
    pst_err_t err = {0};
    int rc = pst_fedjoin_model_open(&m, &site, data, size, &err);
    if (rc == PST_OK)
        rc = pst_modelspec_build(&m.spec, &m.run_cfg, m.mf.task, m.mf.n_classes, &err);
    if (rc == PST_OK) {
        pst_model_t *model = pst_modelfile_build(&m.mf, ROWS, &err);
        rc = model ? PST_OK : PST_EFORMAT;
        pst_model_destroy(&model);
    }
    if (rc != PST_OK)
        pst_fuzz_check(err.msg[0] != '\0', "a refused contract says why");
    pst_fedjoin_model_fini(&m);
    return 0;
}
