/* A federated server's state between rounds as bytes, for its checkpoint: the round reached, the
 * global weights, the server optimizer's state (momentum, adaptive moments), its round counter and
 * noise stream, the sampling stream, and the registry (site ids in registration order, the rows
 * each registered with, the keys bound to them). Checksummed; every size is checked against the
 * buffer and the running coordinator before anything is read. */
#ifndef PST_PS_FED_FEDSTATE_H
#define PST_PS_FED_FEDSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "ps/fed/fedcoord.h"
#include "ps/fed/fedtrust.h"

/* *buf (caller frees) = the state of c and t between rounds. */
int pst_fedstate_save(pst_fedcoord_t *c, const pst_fedtrust_t *t, uint8_t **buf, size_t *len,
                      pst_err_t *err);

/* Restores buf into c (a new coordinator of the same model and configuration, no site registered
 * yet) and t: the sites are registered again with the same indices and held until they are seen.
 * origin names the bytes in errors (a file path). PST_EFORMAT for a damaged or foreign buffer,
 * PST_EINVAL for one of another model. */
int pst_fedstate_load(pst_fedcoord_t *c, pst_fedtrust_t *t, const uint8_t *buf, size_t len,
                      const char *origin, pst_err_t *err);

/* The same through a file, written atomically (common/atomicfile): a reader sees the last round's
 * checkpoint or the one before, never half of one. */
int pst_fedstate_write(pst_fedcoord_t *c, const pst_fedtrust_t *t, const char *path,
                       pst_err_t *err);
int pst_fedstate_read(pst_fedcoord_t *c, pst_fedtrust_t *t, const char *path, pst_err_t *err);

#endif
