/* Run configuration: a typed struct, a table of every key with its default and meaning, YAML
 * loading, --set overrides and a YAML dump of the resolved values. */
#ifndef PST_CONFIG_H
#define PST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

#define PST_CONFIG_MAX_LIST 64         /* data.features and the like name columns of wide tables */
#define PST_CONFIG_MAX_BYTES (1 << 20) /* a configuration file larger than this is refused */
#define PST_CONFIG_MAX_DEPTH 16        /* nested mappings and lists, at most */
/* The choices of a key whose value names a directory: letters, digits, '-', '_', '.', not
 * starting with '.' (so never "..", never a path). */
#define PST_CONFIG_NAME_CHOICE "<name>"

typedef struct pst_str_list {
    int n;
    char *items[PST_CONFIG_MAX_LIST];
} pst_str_list_t;

typedef struct pst_int_list {
    int n;
    long items[PST_CONFIG_MAX_LIST];
} pst_int_list_t;

typedef struct pst_config {
    char *name;
    long seed;
    char *log_level;

    struct {
        char *train, *test, *format, *target, *train_labels, *test_labels, *task;
        double train_fraction, val_fraction, test_fraction;
        bool stratify;
        char *scaler, *impute;
        bool drop_duplicates;
        long n_classes;
        bool cache;        /* sparse models: read/write the LIBSVM binary cache */
        long buffer_rows;  /* sparse models: > 0 streams data.train through this many rows */
        long read_threads; /* LIBSVM / criteo text: parsing threads, 0 = all online cores */
        long hash_bits, hash_seed, numeric_columns, categorical_columns; /* criteo TSV */
        char *numeric;                                                   /* value, log, bucket */
        /* CSV columns: types, selection, encoding and outliers */
        pst_str_list_t categorical, as_numeric, features, drop_columns;
        char *dates, *id_column, *high_cardinality, *outliers;
        long max_categories, hash_slots;
        double outlier_threshold;
        pst_int_list_t image_shape; /* [channels, height, width] or [height, width] of a row */
        pst_str_list_t augment;     /* image augmentation ops, applied per training batch */
        /* sequence windows cut from a time-ordered CSV (recurrent models) */
        long window, horizon;
        pst_str_list_t sequence_columns;
    } data;

    struct {
        pst_int_list_t hidden;
        char *activation;
        double dropout;
        pst_str_list_t layers;
        char *init;      /* weight initialisation of dense and conv2d layers */
        char *init_from; /* a model file to start from (fine-tuning), or "" */
        char *output, *loss;
        double huber_delta;
        char *type;                 /* dense, sparse_lr, fm or wide_deep */
        long factors;               /* fm: k */
        double init_scale;          /* sparse models: new rows start uniform in [-s, s] */
        long embedding_dim, fields; /* wide_deep */
        char *pooling;              /* wide_deep: sum or mean */
    } model;

    struct {
        char *name;
        double lr, momentum, beta1, beta2, eps, weight_decay;
        long lookahead_k;
        double lookahead_alpha;
        double ftrl_beta, ftrl_l1, ftrl_l2;
    } optimizer;

    struct {
        char *name;
        double gamma, min_lr, factor, threshold;
        long step_size, warmup_steps, patience;
    } schedule;

    struct {
        long epochs, batch_size, patience, smote_k;
        double l1, l2, clip_norm, clip_value, min_delta;
        bool restore_best, shuffle;
        char *progress, *imbalance;
        pst_str_list_t freeze; /* layers (indices or kind names) that receive no updates */
        struct {
            double clip, noise, delta, epsilon_budget;
        } dp; /* DP-SGD in the dense loop (train.dp.*) */
        struct {
            double sparsity; /* 0: no pruning */
            long start, end; /* epochs: pruning grows over start..end, then fine-tunes */
            char *scope;     /* global | layer */
        } prune;
        char *teacher; /* knowledge distillation from this model or ensemble file ("": off) */
        double distill_temperature, distill_alpha;
        bool qat; /* quantisation-aware training: fake-quantised int8 forwards */
    } train;

    struct {
        long servers, staleness, checkpoint_every, groups, server_memory;
        char *consistency, *interface, *security;
        double heartbeat_timeout, timeout;
        long keep_checkpoints; /* checkpoints each server keeps; 0: all */
        bool elastic; /* dense jobs: workers' sums through server 0, dropped workers skipped */
    } cluster;

    struct {
        char *codec, *pull_codec;
        bool prefetch;
        bool push_acks;
        bool coalesce;
    } transport;

    struct {
        long sites, rounds, min_sites, local_epochs, min_responses;
        char *split, *aggregator;
        double alpha, fraction, mu, server_lr, server_momentum, lr_decay;
        double wait_after_min, round_timeout, start_timeout, heartbeat, heartbeat_timeout;
        double server_timeout;
        char *codec, *down_codec, *listen, *server, *site, *key, *server_key, *allowed_keys;
        bool insecure;
        struct {
            double clip, noise, delta, epsilon_budget;
        } dp;
        char *attack;         /* none | sign_flip | noise: what attacking simulated sites send */
        long attack_sites;    /* the first attack_sites sites attack */
        double attack_scale;  /* the attack's size, in multiples of the honest update */
        char *weighting;      /* samples | equal | capped: the updates' weights in the mean */
        long max_sites;       /* fed serve: most site ids that may register */
        char *local_state;    /* reset | keep: a site's optimizer state across rounds */
        bool server_nesterov; /* FedAvgM steps along the Nesterov look-ahead */
    } fed;

    struct {
        bool tensorboard; /* events.out.tfevents.* beside metrics.jsonl */
        long log_steps;   /* > 0: a step record every this many steps (jsonl and events) */
        bool histograms;  /* weight and gradient histograms per layer per epoch (events) */

        long test_predictions; /* rows of test_predictions.csv (0: none) */
    } output;

    struct {
        bool profile; /* train.drift_profile: store training distributions in the model file */
        double warn;  /* predict.drift_warn: PSI that makes predict warn; 0 = off */
    } drift;
} pst_config_t;

typedef enum {
    PST_CFG_STR,
    PST_CFG_INT,
    PST_CFG_FLOAT,
    PST_CFG_BOOL,
    PST_CFG_INT_LIST,
    PST_CFG_STR_LIST
} pst_cfg_type_t;

typedef struct pst_config_key {
    const char *key;
    pst_cfg_type_t type;
    size_t offset;
    const char *default_value; /* as YAML text */
    const char *choices;       /* "a|b|c" for enumerations, PST_CONFIG_NAME_CHOICE, or NULL */
    double min, max;           /* numeric bounds (inclusive); min > max means unbounded */
    const char *help;
} pst_config_key_t;

/* The key table, terminated by an entry with key == NULL. */
const pst_config_key_t *pst_config_keys(void);

/* Sets every key to its default. */
int pst_config_init(pst_config_t *cfg);
void pst_config_fini(pst_config_t *cfg);

/* Merges a YAML file: nested mappings name keys as section.key. Unknown keys and bad values are
 * errors naming the key and the file:line. */
int pst_config_load_file(pst_config_t *cfg, const char *path, pst_err_t *err);
/* Merges YAML text (origin names it in errors). */
int pst_config_load_string(pst_config_t *cfg, const char *yaml, const char *origin, pst_err_t *err);
/* Applies one override "key=value"; value is parsed as YAML (so lists are [a, b]). */
int pst_config_set(pst_config_t *cfg, const char *assignment, pst_err_t *err);
/* Sets every key of dst whose name starts with prefix ("data.") to src's value. */
int pst_config_copy_prefix(pst_config_t *dst, const pst_config_t *src, const char *prefix,
                           pst_err_t *err);
/* Checks cross-key constraints (fractions, required paths). */
int pst_config_validate(const pst_config_t *cfg, pst_err_t *err);

/* Writes every key with its resolved value as YAML. */
int pst_config_write(const pst_config_t *cfg, FILE *out);
/* The same into a malloc'ed string. Caller frees. */
char *pst_config_to_string(const pst_config_t *cfg);
/* Writes the reference table (key, default, meaning) as Markdown. */
void pst_config_write_reference(FILE *out);

#endif
