/* TensorBoard event file writer: scalars, histograms and plugin summaries as tensorflow.Event
 * records (protoc-c from proto/tensorboard.proto) in TFRecord framing. */
#ifndef PST_TB_TBWRITER_H
#define PST_TB_TBWRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct pst_tbwriter pst_tbwriter_t;

/* Creates DIR (mkdir -p) and DIR/events.out.tfevents.SECONDS.HOST.PID.N, a new file (never an
 * existing one), and writes its first record (file_version "brain.Event:2"). Caller owns the
 * result. Records are appended as they are logged, so TensorBoard can follow a live run; the
 * framing's checksums let a reader tell a torn last record from a whole one. */
pst_tbwriter_t *pst_tbwriter_new(const char *dir, pst_err_t *err);
void pst_tbwriter_destroy(pst_tbwriter_t **self_p);

/* The event file's path. */
const char *pst_tbwriter_path(const pst_tbwriter_t *w);

/* One event at step holding n scalars (simple_value, float as TensorBoard stores them).
 * Non-finite values are skipped, as metrics.jsonl writes them as null. */
int pst_tbwriter_scalars(pst_tbwriter_t *w, int64_t step, const char *const *tags,
                         const double *values, int n, pst_err_t *err);
int pst_tbwriter_scalar(pst_tbwriter_t *w, const char *tag, int64_t step, double value,
                        pst_err_t *err);

/* A histogram of n values (non-finite ones skipped) in `buckets` equal-width buckets between
 * their minimum and maximum (0 buckets: 30). */
int pst_tbwriter_histogram(pst_tbwriter_t *w, const char *tag, int64_t step, const float *v,
                           size_t n, int buckets, pst_err_t *err);

/* A summary value for a TensorBoard plugin: tag, an empty DT_FLOAT tensor and metadata naming
 * plugin_name with content (serialised plugin data), as the HParams plugin reads them. */
int pst_tbwriter_plugin(pst_tbwriter_t *w, const char *tag, int64_t step, const char *plugin_name,
                        const uint8_t *content, size_t content_len, pst_err_t *err);

#endif
