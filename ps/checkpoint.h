/* Server checkpoints: every slice, its optimizer state and clock, in one checksummed file. */
#ifndef PST_CHECKPOINT_H
#define PST_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/optim/optim.h"
#include "ps/shard.h"

#define PST_CHECKPOINT_VERSION 1

/* DIR/server-S.ckpt into buf. */
int pst_checkpoint_path(const char *dir, uint32_t server, char *buf, size_t len, pst_err_t *err);

/* Writes every slice of shard (values, optimizer state and steps, slice clock) and clock, the
 * number of clocks completed, to DIR/server-S.ckpt: the file is built in memory, written to a
 * temporary file beside it, fsynced and renamed over the old one, so a crash or failed write
 * leaves the previous checkpoint in place. Creates DIR if needed. */
int pst_checkpoint_write(const char *dir, pst_shard_t *shard, uint64_t clock, pst_err_t *err);

/* pst_checkpoint_write to the file at path (its directory must exist). */
int pst_checkpoint_write_file(const char *path, pst_shard_t *shard, uint64_t clock, pst_err_t *err);

/* cluster.keep_checkpoints: writes the checkpoint of clock to DIR/server-S-clock-C.ckpt, makes
 * DIR/server-S.ckpt (what a resume reads) that file (a hard link replaced atomically, or a second
 * atomic write where links are not supported), and only then deletes this server's older
 * clock-named checkpoints beyond the newest keep (0: none deleted). A failed write deletes
 * nothing: the previous checkpoints stay as they were. */
int pst_checkpoint_write_kept(const char *dir, pst_shard_t *shard, uint64_t clock, uint32_t keep,
                              pst_err_t *err);
/* DIR/server-S-clock-C.ckpt into buf. */
int pst_checkpoint_history_path(const char *dir, uint32_t server, uint64_t clock, char *buf,
                                size_t len, pst_err_t *err);

/* Loads a checkpoint into a new shard whose slices get optimizers made from optim (which must be
 * the kind that wrote it). *clock receives the clocks completed. A truncated, corrupt or foreign
 * file is refused with PST_EFORMAT and a message; nothing is returned then. Caller owns the
 * result. */
pst_shard_t *pst_checkpoint_load(const char *path, const pst_optim_cfg_t *optim, uint64_t *clock,
                                 pst_err_t *err);
/* The same from a checkpoint's len bytes at data (borrowed); name stands for the file in
 * messages. */
pst_shard_t *pst_checkpoint_load_mem(const uint8_t *data, size_t len, const char *name,
                                     const pst_optim_cfg_t *optim, uint64_t *clock, pst_err_t *err);

#endif
