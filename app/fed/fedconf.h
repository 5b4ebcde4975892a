/* The fed.* keys of a configuration: their checks against each other and the data, and the
 * coordinator settings they describe. */
#ifndef PST_APP_FED_FEDCONF_H
#define PST_APP_FED_FEDCONF_H

#include "common/net/codec.h"
#include "common/config.h"
#include "common/data/dataset.h"
#include "ps/fed/fedcoord.h"

/* Checks the fed.* keys against each other and the data task (NULL train skips the data checks;
 * n_sites < 0 skips the checks that need the number of sites). */
int pst_fedconf_check(const pst_config_t *cfg, const pst_dataset_t *train, pst_err_t *err);

/* The coordinator's settings; seeds derive from the configuration's seed. */
void pst_fedconf_coord(const pst_config_t *cfg, pst_fedcoord_cfg_t *out);

/* fed.codec and fed.down_codec (checked by the configuration's choices). */
pst_codec_t pst_fedconf_up_codec(const pst_config_t *cfg);
pst_codec_t pst_fedconf_down_codec(const pst_config_t *cfg);

#endif
