/* Run configuration: key table, defaults, YAML loading, overrides, validation and dumping. */
#include "common/data/augment.h"
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/numparse.h"

#define OFF(field) offsetof(pst_config_t, field)
#define NOB 1, 0 /* no numeric bounds */

static const pst_config_key_t keys[] = {
    {"name", PST_CFG_STR, OFF(name), "run", PST_CONFIG_NAME_CHOICE, NOB,
     "Run name; the run directory defaults to runs/NAME-TIMESTAMP."},
    {"seed", PST_CFG_INT, OFF(seed), "0", NULL, 0, 4294967295.0,
     "Seed for splits, shuffling, initialisation and dropout."},
    {"log_level", PST_CFG_STR, OFF(log_level), "info", "debug|info|warning|error", NOB,
     "Verbosity of messages on stderr."},

    {"data.train", PST_CFG_STR, OFF(data.train), "", NULL, NOB,
     "Training data file (CSV, LIBSVM, or an IDX images file). Required. Under mpirun, a name "
     "containing {worker} gives each worker its own file (0-based worker index)."},
    {"data.test", PST_CFG_STR, OFF(data.test), "", NULL, NOB,
     "Test data file. Empty: train/val/test are split from data.train."},
    {"data.format", PST_CFG_STR, OFF(data.format), "auto", "auto|csv|libsvm|idx|criteo", NOB,
     "File format; auto infers it from the name and first line (a .tsv or .tsv.gz name reads as "
     "criteo). criteo: label, data.numeric_columns numbers, data.categorical_columns strings, "
     "tab-separated, hashed into features (sparse models)."},
    {"data.target", PST_CFG_STR, OFF(data.target), "target", NULL, NOB,
     "CSV column holding the label or regression target."},
    {"data.train_labels", PST_CFG_STR, OFF(data.train_labels), "", NULL, NOB,
     "IDX labels file for data.train; empty: derived (images-idx3 -> labels-idx1)."},
    {"data.test_labels", PST_CFG_STR, OFF(data.test_labels), "", NULL, NOB,
     "IDX labels file for data.test; empty: derived likewise."},
    {"data.task", PST_CFG_STR, OFF(data.task), "auto", "auto|classification|regression", NOB,
     "auto: classification when the target has at most 20 distinct integer values."},
    {"data.train_fraction", PST_CFG_FLOAT, OFF(data.train_fraction), "0.7", NULL, 0, 1,
     "Share of rows for training when there is no test file."},
    {"data.val_fraction", PST_CFG_FLOAT, OFF(data.val_fraction), "0.2", NULL, 0, 0.9,
     "Share of rows for validation (of the whole file, or of data.train when data.test is set)."},
    {"data.test_fraction", PST_CFG_FLOAT, OFF(data.test_fraction), "0.1", NULL, 0, 1,
     "Share of rows for testing when there is no test file."},
    {"data.stratify", PST_CFG_BOOL, OFF(data.stratify), "true", NULL, NOB,
     "Keep class ratios in every split (classification)."},
    {"data.scaler", PST_CFG_STR, OFF(data.scaler), "auto", "auto|none|standard|minmax", NOB,
     "Feature scaling fitted on the training split; auto: standard, or none for images."},
    {"data.impute", PST_CFG_STR, OFF(data.impute), "mean", "mean|median|most_frequent", NOB,
     "Value that replaces a missing cell, computed on the training split."},
    {"data.drop_duplicates", PST_CFG_BOOL, OFF(data.drop_duplicates), "false", NULL, NOB,
     "Drop exact duplicate rows from the training split."},
    {"data.n_classes", PST_CFG_INT, OFF(data.n_classes), "0", NULL, 0, 1e6,
     "Expected number of classes; a label outside is an error. 0: from the data."},
    {"data.cache", PST_CFG_BOOL, OFF(data.cache), "true", NULL, NOB,
     "Sparse models: keep a binary copy of each LIBSVM file beside it (FILE.pstcache), written "
     "on the first read and reused while the file's size and modification time are unchanged."},
    {"data.buffer_rows", PST_CFG_INT, OFF(data.buffer_rows), "0", NULL, 0, 1e9,
     "Sparse models: 0 reads data.train whole; > 0 streams it every epoch through a shuffle "
     "buffer of this many rows (bounded memory; needs data.test, local runs only)."},
    {"data.read_threads", PST_CFG_INT, OFF(data.read_threads), "0", NULL, 0, 256,
     "LIBSVM and criteo text: threads that parse a file (and check a cache), each a byte range "
     "of whole lines; 0: all online cores (one per MiB of text at most), 1: serial. The rows "
     "and error messages are the same for every count."},
    {"data.hash_bits", PST_CFG_INT, OFF(data.hash_bits), "18", NULL, 1, 32,
     "criteo: 2^bits hash buckets (sparse_lr, fm: shared by all columns; wide_deep: per column, "
     "so bits + bits of the column count must fit 32)."},
    {"data.hash_seed", PST_CFG_INT, OFF(data.hash_seed), "0", NULL, 0, 4294967295.0,
     "criteo: seed of the feature hash; every column hashes in its own namespace."},
    {"data.numeric_columns", PST_CFG_INT, OFF(data.numeric_columns), "13", NULL, 0, 4096,
     "criteo: numeric columns after the label."},
    {"data.categorical_columns", PST_CFG_INT, OFF(data.categorical_columns), "26", NULL, 0, 4096,
     "criteo: categorical (string) columns after the numeric ones."},
    {"data.numeric", PST_CFG_STR, OFF(data.numeric), "log", "value|log|bucket", NOB,
     "criteo: a numeric cell becomes one feature per column with the number (value) or "
     "sign(x) ln(1 + |x|) (log) as its value, or a feature per log2 bucket of the number with "
     "value 1 (bucket). Empty cells add nothing."},
    {"data.image_shape", PST_CFG_INT_LIST, OFF(data.image_shape), "[]", NULL, 1, 65536,
     "Shape of each row as an image, [channels, height, width] or [height, width] (one "
     "channel), for conv2d and pooling layers. Empty: each row is a square single-channel image "
     "(28 x 28 for MNIST-style IDX files)."},

    {"data.categorical", PST_CFG_STR_LIST, OFF(data.categorical), "[]", NULL, NOB,
     "CSV: columns read as categories even when their values look numeric (codes, zip codes). "
     "Other columns are typed from the training file: numeric, boolean (true/false, yes/no), "
     "date (YYYY-MM-DD or YYYY/MM/DD, optionally with a time) or categorical (any other text)."},
    {"data.as_numeric", PST_CFG_STR_LIST, OFF(data.as_numeric), "[]", NULL, NOB,
     "CSV: columns that must be numeric: a cell that is not a number is an error naming it. "
     "(data.numeric is the criteo transform.)"},
    {"data.features", PST_CFG_STR_LIST, OFF(data.features), "[]", NULL, NOB,
     "CSV: the feature columns by name; empty: every column but the target and the id. A name "
     "the file lacks is an error."},
    {"data.drop_columns", PST_CFG_STR_LIST, OFF(data.drop_columns), "[]", NULL, NOB,
     "CSV: columns left out of the features by name; a name the file lacks is an error."},
    {"data.dates", PST_CFG_STR, OFF(data.dates), "expand", "expand|drop", NOB,
     "CSV date columns: expand into year, month, day of week (0 = Monday) and day of year, or "
     "drop them."},
    {"data.id_column", PST_CFG_STR, OFF(data.id_column), "", NULL, NOB,
     "CSV: a column identifying each row: never a feature; predict copies it to its output."},
    {"data.max_categories", PST_CFG_INT, OFF(data.max_categories), "32", NULL, 1, 1e6,
     "CSV categorical columns: one-hot with a feature per value seen in the training rows, up "
     "to this many values, plus an \"other\" feature for values not seen there. A missing cell "
     "is a value of its own."},
    {"data.high_cardinality", PST_CFG_STR, OFF(data.high_cardinality), "top", "top|hash|ordinal",
     NOB,
     "CSV categorical columns with more training values than data.max_categories: top: one-hot "
     "of the most frequent ones, the rest \"other\"; hash: data.hash_slots one-hot slots "
     "chosen by a hash of the text; ordinal: one feature, the value's rank in sorted order "
     "(0 for unseen values)."},
    {"data.hash_slots", PST_CFG_INT, OFF(data.hash_slots), "64", NULL, 1, 1 << 20,
     "CSV: slots of a hashed categorical column (data.high_cardinality: hash)."},
    {"data.outliers", PST_CFG_STR, OFF(data.outliers), "none", "none|clip_iqr|clip_zscore", NOB,
     "CSV numeric columns: clamp values outside bounds fitted on the training rows: Tukey fences "
     "(quartiles -/+ threshold x IQR) or mean -/+ threshold x std. Stored in the model."},
    {"data.outlier_threshold", PST_CFG_FLOAT, OFF(data.outlier_threshold), "0", NULL, 0, 1e6,
     "Multiple for data.outliers; 0: 1.5 (clip_iqr) or 3 (clip_zscore)."},

    {"data.augment", PST_CFG_STR_LIST, OFF(data.augment), "[]", NULL, NOB,
     "Image augmentation of every training batch, in order, drawn from a stream seeded by seed "
     "and the step: shift:N (move by up to N pixels, zero fill), flip (left-right, p 1/2), "
     "rotate:DEG (up to DEG degrees, bilinear), cutout:N (zero an N x N square). Rows are images "
     "of the model's input shape (data.image_shape)."},

    /* sequence windows */
    {"data.window", PST_CFG_INT, OFF(data.window), "0", NULL, 0, 65536,
     "Time series: > 0 cuts the time-ordered rows of a CSV into windows of this many steps, one "
     "sample each (steps x data.sequence_columns values, for lstm and gru layers). The rows are "
     "split in time order (train, then validation, then test) and windows never straddle a "
     "split, so no sample sees a value of a later part. 0: rows are samples."},
    {"data.horizon", PST_CFG_INT, OFF(data.horizon), "1", NULL, 0, 65536,
     "With data.window: the target is data.target this many rows after the window's last row "
     "(forecasting); 0: the target of the window's last row (sequence classification)."},
    {"data.sequence_columns", PST_CFG_STR_LIST, OFF(data.sequence_columns), "[]", NULL, NOB,
     "With data.window: the columns of each step, by name (data.target may be one). Empty: "
     "every feature column, and data.target too when forecasting (data.horizon > 0)."},

    {"model.hidden", PST_CFG_INT_LIST, OFF(model.hidden), "[]", NULL, 1, 1e6,
     "Hidden layer widths, e.g. [256, 128]. Empty: linear/logistic/softmax regression."},
    {"model.activation", PST_CFG_STR, OFF(model.activation), "relu", "relu|tanh|sigmoid", NOB,
     "Activation after each hidden layer."},
    {"model.dropout", PST_CFG_FLOAT, OFF(model.dropout), "0", NULL, 0, 0.99,
     "Dropout rate after each hidden activation."},
    {"model.layers", PST_CFG_STR_LIST, OFF(model.layers), "[]", NULL, NOB,
     "Explicit stack instead of model.hidden, e.g. [dense:256, relu, dropout:0.2, dense:10, "
     "softmax]."},
    {"model.init", PST_CFG_STR, OFF(model.init), "auto",
     "auto|he_normal|he_uniform|glorot_normal|glorot_uniform|lecun_normal|lecun_uniform|"
     "orthogonal",
     NOB,
     "Weight initialisation of every dense, conv2d, lstm and gru layer (a model.layers entry may "
     "add its own, e.g. dense:64:init=lecun_normal). auto: he_normal before a ReLU, else "
     "glorot_uniform; lstm and gru: glorot_uniform input weights and orthogonal recurrent ones. "
     "orthogonal: orthonormal rows or columns (modified Gram-Schmidt of a Gaussian draw); for "
     "lstm and gru, the input weights and each gate's recurrent block."},
    {"model.init_from", PST_CFG_STR, OFF(model.init_from), "", NULL, NOB,
     "A model file (model.pst) whose weights start training (fine-tuning): its layers must "
     "match model.layers kind for kind; when only the output layer's size differs (another "
     "class count) that layer starts fresh. Empty: random initialisation."},
    {"model.output", PST_CFG_STR, OFF(model.output), "auto", "auto|softmax|sigmoid|linear", NOB,
     "Output layer; auto: softmax for classification, linear for regression."},
    {"model.loss", PST_CFG_STR, OFF(model.loss), "auto", "auto|softmax_ce|bce|mse|mae|huber", NOB,
     "Loss; auto: softmax_ce (bce with a sigmoid output) or mse."},
    {"model.huber_delta", PST_CFG_FLOAT, OFF(model.huber_delta), "1.0", NULL, 1e-12, 1e12,
     "Huber loss threshold."},
    {"model.type", PST_CFG_STR, OFF(model.type), "dense", "dense|sparse_lr|fm|wide_deep", NOB,
     "dense: a layer stack (model.hidden, model.layers); sparse_lr, fm, wide_deep: logistic "
     "regression, a factorization machine, or wide & deep (a linear part plus per-field "
     "embeddings into the model.hidden stack) over sparse LIBSVM or criteo features with 0/1 "
     "labels, trained with ftrl or adagrad."},
    {"model.factors", PST_CFG_INT, OFF(model.factors), "8", NULL, 1, 512,
     "fm: factors per feature (k)."},
    {"model.init_scale", PST_CFG_FLOAT, OFF(model.init_scale), "0.01", NULL, 0, 10,
     "fm, wide_deep: a feature's weight and factors (embedding) start uniform in [-s, s] "
     "(sparse_lr weights start at 0)."},
    {"model.embedding_dim", PST_CFG_INT, OFF(model.embedding_dim), "8", NULL, 1, 512,
     "wide_deep: embedding width of every feature; each field's embeddings pool into one vector "
     "of the deep part's input."},
    {"model.fields", PST_CFG_INT, OFF(model.fields), "1", NULL, 1, 4096,
     "wide_deep on LIBSVM data: feature id i belongs to field i mod fields (1: one pooled "
     "field). criteo data: every column is a field, and this key is not used."},
    {"model.pooling", PST_CFG_STR, OFF(model.pooling), "sum", "sum|mean", NOB,
     "wide_deep: how a field's feature embeddings (times their values) combine."},

    {"optimizer.name", PST_CFG_STR, OFF(optimizer.name), "adam",
     "sgd|momentum|nesterov|adam|adamw|radam|adabelief|adagrad|ftrl", NOB,
     "Optimizer (ftrl: FTRL-Proximal with alpha = optimizer.lr)."},
    {"optimizer.lr", PST_CFG_FLOAT, OFF(optimizer.lr), "0.001", NULL, 0, 1e6, "Learning rate."},
    {"optimizer.momentum", PST_CFG_FLOAT, OFF(optimizer.momentum), "0.9", NULL, 0, 1,
     "Momentum (momentum, nesterov)."},
    {"optimizer.beta1", PST_CFG_FLOAT, OFF(optimizer.beta1), "0.9", NULL, 0, 1,
     "First-moment decay (Adam family)."},
    {"optimizer.beta2", PST_CFG_FLOAT, OFF(optimizer.beta2), "0.999", NULL, 0, 1,
     "Second-moment decay (Adam family)."},
    {"optimizer.eps", PST_CFG_FLOAT, OFF(optimizer.eps), "0", NULL, 0, 1,
     "Denominator epsilon; 0: the optimizer's own (1e-8 Adam family, 1e-10 AdaGrad, 1e-16 "
     "AdaBelief)."},
    {"optimizer.weight_decay", PST_CFG_FLOAT, OFF(optimizer.weight_decay), "0", NULL, 0, 1e3,
     "Weight decay: decoupled for adamw, added to the gradient otherwise."},
    {"optimizer.lookahead_k", PST_CFG_INT, OFF(optimizer.lookahead_k), "0", NULL, 0, 1e6,
     "Lookahead: sync slow weights every k steps (0: off)."},
    {"optimizer.lookahead_alpha", PST_CFG_FLOAT, OFF(optimizer.lookahead_alpha), "0.5", NULL, 0, 1,
     "Lookahead slow-weight step size."},
    {"optimizer.ftrl_beta", PST_CFG_FLOAT, OFF(optimizer.ftrl_beta), "1", NULL, 1e-12, 1e9,
     "ftrl: beta. Sparse models apply ftrl_* per example (to gradients summed over a batch); "
     "dense models to the batch-mean gradient."},
    {"optimizer.ftrl_l1", PST_CFG_FLOAT, OFF(optimizer.ftrl_l1), "0", NULL, 0, 1e9,
     "ftrl: L1 strength; a weight whose z is at most l1 in magnitude is exactly 0."},
    {"optimizer.ftrl_l2", PST_CFG_FLOAT, OFF(optimizer.ftrl_l2), "0", NULL, 0, 1e9,
     "ftrl: L2 strength."},

    {"schedule.name", PST_CFG_STR, OFF(schedule.name), "constant",
     "constant|step|exponential|cosine|plateau|one_cycle", NOB,
     "Learning-rate schedule. one_cycle: per step, a half cosine up from optimizer.lr/25 to "
     "optimizer.lr over the first 30% of train.epochs, then down to optimizer.lr/25e4."},
    {"schedule.gamma", PST_CFG_FLOAT, OFF(schedule.gamma), "0.1", NULL, 0, 1,
     "Decay factor (step: per step_size epochs; exponential: per epoch)."},
    {"schedule.step_size", PST_CFG_INT, OFF(schedule.step_size), "10", NULL, 1, 1e9,
     "Epochs between decays (step)."},
    {"schedule.min_lr", PST_CFG_FLOAT, OFF(schedule.min_lr), "0", NULL, 0, 1e6,
     "Floor of the learning rate (cosine, plateau)."},
    {"schedule.warmup_steps", PST_CFG_INT, OFF(schedule.warmup_steps), "0", NULL, 0, 1e12,
     "Linear warm-up from 0 over this many steps, on top of any schedule."},
    {"schedule.factor", PST_CFG_FLOAT, OFF(schedule.factor), "0.1", NULL, 0, 1,
     "Plateau: multiply the learning rate by this."},
    {"schedule.patience", PST_CFG_INT, OFF(schedule.patience), "5", NULL, 0, 1e9,
     "Plateau: epochs without improvement before decaying."},
    {"schedule.threshold", PST_CFG_FLOAT, OFF(schedule.threshold), "1e-4", NULL, 0, 1,
     "Plateau: relative improvement that counts."},

    {"train.epochs", PST_CFG_INT, OFF(train.epochs), "10", NULL, 1, 1e9, "Passes over the data."},
    {"train.batch_size", PST_CFG_INT, OFF(train.batch_size), "64", NULL, 1, 1e7,
     "Rows per mini-batch (per worker under mpirun)."},
    {"train.l1", PST_CFG_FLOAT, OFF(train.l1), "0", NULL, 0, 1e6,
     "L1 penalty on weights (not biases)."},
    {"train.l2", PST_CFG_FLOAT, OFF(train.l2), "0", NULL, 0, 1e6,
     "L2 penalty on weights (not biases): l2/2 * sum w^2."},
    {"train.clip_norm", PST_CFG_FLOAT, OFF(train.clip_norm), "0", NULL, 0, 1e12,
     "Clip the gradient to this global L2 norm (0: off)."},
    {"train.clip_value", PST_CFG_FLOAT, OFF(train.clip_value), "0", NULL, 0, 1e12,
     "Clip each gradient element to [-v, v] (0: off)."},
    {"train.patience", PST_CFG_INT, OFF(train.patience), "0", NULL, 0, 1e9,
     "Early stopping: stop after this many epochs without validation-loss improvement (0: off)."},
    {"train.min_delta", PST_CFG_FLOAT, OFF(train.min_delta), "0", NULL, 0, 1e12,
     "Early stopping: smallest decrease of validation loss that counts."},
    {"train.restore_best", PST_CFG_BOOL, OFF(train.restore_best), "true", NULL, NOB,
     "Early stopping: keep the weights of the best validation epoch."},
    {"train.freeze", PST_CFG_STR_LIST, OFF(train.freeze), "[]", NULL, NOB,
     "Layers kept fixed (fine-tuning): their 0-based indices in model.layers, or kind names "
     "(dense, conv2d, lstm, gru, batchnorm: every layer of that kind). A frozen layer's "
     "weights get no updates, and under mpirun no gradients are pushed for them."},
    {"train.shuffle", PST_CFG_BOOL, OFF(train.shuffle), "true", NULL, NOB,
     "Shuffle training rows every epoch."},
    {"train.imbalance", PST_CFG_STR, OFF(train.imbalance), "none",
     "none|class_weight|oversample|undersample|smote", NOB,
     "Class imbalance handling, applied to training rows only (train, locally and under mpirun, "
     "and the cv, bag, stack, sweep tasks; federated runs refuse it): balanced class weights in "
     "the loss, random over- or under-sampling, or SMOTE."},
    {"train.smote_k", PST_CFG_INT, OFF(train.smote_k), "5", NULL, 1, 1000,
     "SMOTE: neighbours a synthetic row may be drawn towards."},
    /* DP-SGD in the dense training loop. */
    {"train.dp.clip", PST_CFG_FLOAT, OFF(train.dp.clip), "0", NULL, 0, 1e12,
     "DP-SGD: clip each example's whole gradient to this L2 norm, then add Gaussian noise to "
     "the batch sum; batches are Poisson-sampled (each row with probability q = batch_size x "
     "workers / training rows). 0: off. Dense models without batchnorm only."},
    {"train.dp.noise", PST_CFG_FLOAT, OFF(train.dp.noise), "0", NULL, 0, 1e6,
     "DP-SGD: noise multiplier sigma (noise std = sigma x train.dp.clip on the global step's "
     "sum). 0: the smallest sigma that spends train.dp.epsilon_budget in train.epochs epochs."},
    {"train.dp.delta", PST_CFG_FLOAT, OFF(train.dp.delta), "1e-5", NULL, 1e-300, 0.999999,
     "DP-SGD: delta at which the spent epsilon is reported (keep it below 1 / training rows)."},
    {"train.dp.epsilon_budget", PST_CFG_FLOAT, OFF(train.dp.epsilon_budget), "0", NULL, 0, 1e12,
     "DP-SGD: stop before an epoch that would spend more than this epsilon (0: no budget)."},
    {"train.progress", PST_CFG_STR, OFF(train.progress), "auto", "auto|bar|lines|none", NOB,
     "Progress display: a live bar on a terminal, plain lines otherwise."},
    {"train.drift_profile", PST_CFG_BOOL, OFF(drift.profile), "true", NULL, NOB,
     "Dense training: store the training distributions in the model file for pstrain drift "
     "and predict.drift_warn: per input quantile bins (20, exact counts) or the 32 most frequent "
     "categories and other, the predictions on the validation rows (else the training rows) "
     "and the labels. Inputs beyond the first 1024 are not profiled."},

    {"train.prune.sparsity", PST_CFG_FLOAT, OFF(train.prune.sparsity), "0", NULL, 0, 0.999,
     "Magnitude pruning: share of dense and conv2d weights set to zero by the end (0: off)."},
    {"train.prune.start", PST_CFG_INT, OFF(train.prune.start), "1", NULL, 1, 1e9,
     "Pruning: first epoch at whose end weights are pruned."},
    {"train.prune.end", PST_CFG_INT, OFF(train.prune.end), "1", NULL, 1, 1e9,
     "Pruning: epoch at whose end the target sparsity is reached (cubic schedule from start); "
     "later epochs fine-tune with the mask fixed. At most train.epochs."},
    {"train.prune.scope", PST_CFG_STR, OFF(train.prune.scope), "global", "global|layer", NOB,
     "Pruning: rank weights by magnitude over all layers together, or each layer on its own."},
    {"train.teacher", PST_CFG_STR, OFF(train.teacher), "", NULL, NOB,
     "Knowledge distillation: a model or bag/stack ensemble file whose softened outputs the "
     "model learns from (classification, softmax output; \"\": off)."},
    {"train.distill_temperature", PST_CFG_FLOAT, OFF(train.distill_temperature), "3", NULL, 1, 100,
     "Distillation: temperature T softening teacher and student outputs."},
    {"train.distill_alpha", PST_CFG_FLOAT, OFF(train.distill_alpha), "0.5", NULL, 0, 1,
     "Distillation: loss = alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(labels)."},

    {"train.qat", PST_CFG_BOOL, OFF(train.qat), "false", NULL, NOB,
     "Quantisation-aware training (fine-tune a float model with model.init_from): training "
     "forwards see the dense and conv2d layers that pstrain quantize makes int8 (weights per "
     "output channel, inputs with a running-max scale) and backward passes the gradient "
     "straight through the rounding (zero where an input was clipped). Not with train.dp.clip."},

    {"cluster.servers", PST_CFG_INT, OFF(cluster.servers), "1", NULL, 1, 1e6,
     "Under mpirun: the first S ranks are parameter servers, the rest workers."},
    {"cluster.groups", PST_CFG_INT, OFF(cluster.groups), "1", NULL, 1, 1e6,
     "cv, bag, stack, sweep under mpirun: workers split into this many groups, each training "
     "one task at a time on the shared servers."},
    {"cluster.consistency", PST_CFG_STR, OFF(cluster.consistency), "bsp", "bsp|ssp|asp", NOB,
     "bsp: synchronous; ssp: bounded staleness; asp: asynchronous."},
    {"cluster.staleness", PST_CFG_INT, OFF(cluster.staleness), "2", NULL, 0, 1e6,
     "SSP: how many clocks a worker may run ahead of the slowest."},
    {"cluster.heartbeat_timeout", PST_CFG_FLOAT, OFF(cluster.heartbeat_timeout), "30", NULL, 0.1,
     1e6, "Seconds of silence after which a worker is declared dead."},
    {"cluster.timeout", PST_CFG_FLOAT, OFF(cluster.timeout), "120", NULL, 0.1, 1e6,
     "Seconds a worker waits for a server reply before failing."},
    {"cluster.checkpoint_every", PST_CFG_INT, OFF(cluster.checkpoint_every), "0", NULL, 0, 1e12,
     "Servers checkpoint their slices every N clocks (0: off)."},
    {"cluster.keep_checkpoints", PST_CFG_INT, OFF(cluster.keep_checkpoints), "3", NULL, 0, 1e6,
     "Clock-named checkpoints each server keeps (server-S-clock-C.ckpt beside server-S.ckpt, "
     "which a resume reads); older ones are deleted once a newer one is complete. 0: keep all."},
    {"cluster.elastic", PST_CFG_BOOL, OFF(cluster.elastic), "true", NULL, NOB,
     "Jobs under mpirun (dense and sparse models): the workers' epoch-end agreements and final "
     "agreement go through server 0, "
     "so a worker silent past cluster.heartbeat_timeout is dropped (its rows skipped, stated in "
     "report.json) and rejoins at the servers' clock when it comes back. false: MPI collectives, "
     "which wait for every worker (a stopped one ends the job after cluster.timeout)."},

    {"cluster.interface", PST_CFG_STR, OFF(cluster.interface), "auto", NULL, NOB,
     "Network interface or IP the servers bind; auto: the host's first non-loopback IPv4, or "
     "loopback when all ranks share one host. 0.0.0.0 (every interface) is logged as a warning."},
    {"cluster.security", PST_CFG_STR, OFF(cluster.security), "auto", "auto|curve|token|none", NOB,
     "Who may talk to the parameter servers. curve: traffic is encrypted and authenticated with "
     "CURVE keys made in memory for the job and shared over MPI; servers admit only the job's "
     "workers, each under its own worker id. token: the same admission with a secret token per "
     "worker in a PLAIN handshake, traffic not encrypted (for loopback, which only root can read; "
     "about half the cost of curve is saved). auto: token when the servers bind loopback (one "
     "host), else curve. none: plain TCP that anyone who reaches the port may use."},
    {"cluster.server_memory", PST_CFG_INT, OFF(cluster.server_memory), "8192", NULL, 0, 1e9,
     "MiB a parameter server's store may hold (16 bytes per value: weight, BSP sum, optimizer "
     "state); INITs and new sparse rows past it are refused. 0: no limit."},

    {"transport.codec", PST_CFG_STR, OFF(transport.codec), "auto",
     "auto|raw|lz4|lz4shuffle|fp16|int8|int8lz4", NOB,
     "Payload codec of pushed gradients. auto: per tensor, raw or lossless LZ4 (plain or over "
     "byte-shuffled floats), whichever the measured compression ratio, codec speed and link speed "
     "say is faster, re-measured every 32 pushes and when the data changes; report.json says what "
     "was chosen and why. int8, int8lz4 and fp16 keep error feedback on the worker; LZ4 falls "
     "back to raw, and int8lz4 to int8, when compression does not shrink a payload."},
    {"transport.pull_codec", PST_CFG_STR, OFF(transport.pull_codec), "same",
     "same|auto|raw|lz4|lz4shuffle|fp16|int8|int8lz4", NOB,
     "Payload codec of pulled weights; same: transport.codec; auto: each server chooses per "
     "tensor for its replies by the same rule."},
    {"transport.prefetch", PST_CFG_BOOL, OFF(transport.prefetch), "true", NULL, NOB,
     "Under mpirun: send pulls ahead and overlap them with computation. Sparse models: the next "
     "batch's rows are pulled while the current batch computes. Dense models of 4096 floats or "
     "more: a tensor per dense layer, each pushed as soon as backward produces its gradient, the "
     "next step's pulls sent right behind the last push and each waited for just before its "
     "layer's forward. bsp trains bit for bit as without it; sparse ssp and asp pulls may read "
     "one more step of staleness within their bounds."},

    {"transport.prefetch_depth", PST_CFG_INT, OFF(transport.prefetch_depth), "1", NULL, 1, 3,
     "Under mpirun with transport.prefetch, sparse models: batches whose rows are pulled ahead, "
     "so that this many pulls are in flight while a step computes and a server's answer has "
     "that many steps to arrive. bsp trains bit for bit alike at any depth; under ssp and asp a "
     "step's rows may miss this worker's own last depth pushes (asp: depth steps more staleness "
     "than without prefetching; ssp: never past its bound)."},

    {"transport.push_acks", PST_CFG_BOOL, OFF(transport.push_acks), "false", NULL, NOB,
     "Under mpirun: true: servers acknowledge every push. false: a server answers a push only when "
     "it refuses it or drops it as stale (one message per push fewer); a refusal fails the "
     "worker's next wait. Either way a worker's later requests see its pushes applied (each "
     "server handles a worker's requests in the order sent)."},
    {"transport.coalesce", PST_CFG_BOOL, OFF(transport.coalesce), "true", NULL, NOB,
     "Under mpirun: a worker's requests to a server travel together in one ZeroMQ message until "
     "it waits for an answer (rows with the bias; under asp a sparse step's pushes with the next "
     "pulls, under bsp and ssp the pushes leave at once since the next answer waits for them), "
     "and a server answers such requests in one message: fewer wake-ups and system calls per "
     "step. The order of requests, and so what each consistency mode guarantees, is unchanged."},

    {"fed.sites", PST_CFG_INT, OFF(fed.sites), "10", NULL, 1, 1e6,
     "pstrain fed: simulate: sites the training rows are split into; serve: sites round 1 waits "
     "for (up to fed.start_timeout)."},
    {"fed.split", PST_CFG_STR, OFF(fed.split), "iid", "iid|dirichlet", NOB,
     "pstrain fed: iid deals rows evenly at random; dirichlet gives each site class shares drawn "
     "from Dirichlet(fed.alpha) (classification)."},
    {"fed.alpha", PST_CFG_FLOAT, OFF(fed.alpha), "0.5", NULL, 1e-6, 1e6,
     "pstrain fed: Dirichlet concentration; small values give sites few classes each."},
    {"fed.rounds", PST_CFG_INT, OFF(fed.rounds), "20", NULL, 1, 1e9,
     "pstrain fed: federated rounds."},
    {"fed.fraction", PST_CFG_FLOAT, OFF(fed.fraction), "1.0", NULL, 1e-9, 1,
     "pstrain fed: share of sites asked each round (ceil(fraction * sites), at least "
     "fed.min_sites)."},
    {"fed.min_sites", PST_CFG_INT, OFF(fed.min_sites), "1", NULL, 1, 1e6,
     "pstrain fed: fewest sites asked in a round; a round waits until this many are connected."},
    {"fed.min_responses", PST_CFG_INT, OFF(fed.min_responses), "0", NULL, 0, 1e6,
     "pstrain fed: updates after which a round closes once fed.wait_after_min has passed (0: "
     "every site asked)."},
    {"fed.wait_after_min", PST_CFG_FLOAT, OFF(fed.wait_after_min), "10", NULL, 0, 1e9,
     "pstrain fed: seconds a round stays open after fed.min_responses updates arrived."},
    {"fed.round_timeout", PST_CFG_FLOAT, OFF(fed.round_timeout), "600", NULL, 0.001, 1e9,
     "pstrain fed: seconds after which a round closes with the updates that arrived; later "
     "ones are dropped."},
    {"fed.local_epochs", PST_CFG_INT, OFF(fed.local_epochs), "1", NULL, 1, 1e6,
     "pstrain fed: epochs each site trains on its rows per round (optimizer.* and train.batch_size "
     "apply)."},
    {"fed.aggregator", PST_CFG_STR, OFF(fed.aggregator), "fedavg",
     "fedavg|fedprox|fedadam|fedyogi|fedadagrad|median|trimmed_mean|krum|multi_krum", NOB,
     "pstrain fed: how the server combines the sites' updates."},
    {"fed.mu", PST_CFG_FLOAT, OFF(fed.mu), "0.01", NULL, 0, 1e6,
     "pstrain fed, fedprox: proximal weight; sites add mu (w - w_global) to each gradient."},
    {"fed.server_lr", PST_CFG_FLOAT, OFF(fed.server_lr), "0", NULL, 0, 1e6,
     "pstrain fed: server learning rate; 0: the aggregator's default (1, or 0.01 for "
     "fedadam/fedyogi/fedadagrad)."},
    {"fed.server_momentum", PST_CFG_FLOAT, OFF(fed.server_momentum), "0", NULL, 0, 0.999,
     "pstrain fed: server momentum of fedavg, fedprox and the robust rules (FedAvgM): the server "
     "steps along m = server_momentum m + update, times fed.server_lr; 0: none."},
    {"fed.lr_decay", PST_CFG_FLOAT, OFF(fed.lr_decay), "1", NULL, 1e-6, 1,
     "pstrain fed: the sites' optimizer.lr is multiplied by this once per round (round r trains "
     "with lr * lr_decay^(r-1)); 1: constant."},
    {"fed.codec", PST_CFG_STR, OFF(fed.codec), "lz4shuffle", "raw|lz4|lz4shuffle|fp16|int8|int8lz4",
     NOB,
     "pstrain fed: payload codec of the sites' updates (lossless lz4, lz4shuffle; quantised fp16, "
     "int8, int8lz4 keep error feedback on the site)."},
    {"fed.down_codec", PST_CFG_STR, OFF(fed.down_codec), "lz4shuffle", "raw|lz4|lz4shuffle|fp16",
     NOB, "pstrain fed: payload codec of the global weights sent to the sites."},
    {"fed.listen", PST_CFG_STR, OFF(fed.listen), "tcp://0.0.0.0:7600", NULL, NOB,
     "pstrain fed serve: the ZeroMQ endpoint the server binds."},
    {"fed.server", PST_CFG_STR, OFF(fed.server), "", NULL, NOB,
     "pstrain fed join: the server's endpoint, tcp://HOST:PORT (--server overrides)."},
    {"fed.site", PST_CFG_STR, OFF(fed.site), "", NULL, NOB,
     "pstrain fed join: this site's id (letters, digits, '-', '_', '.'); empty: the host name "
     "(--site overrides)."},
    {"fed.key", PST_CFG_STR, OFF(fed.key), "", NULL, NOB,
     "pstrain fed serve/join: this side's CURVE key pair file (from pstrain fed keygen)."},
    {"fed.server_key", PST_CFG_STR, OFF(fed.server_key), "", NULL, NOB,
     "pstrain fed join: the server's public key file (.pub)."},
    {"fed.allowed_keys", PST_CFG_STR, OFF(fed.allowed_keys), "", NULL, NOB,
     "pstrain fed serve: the site keys admitted: a directory of SITE.pub files (each bound to "
     "its site id) or a file of 'KEY [SITE]' lines."},
    {"fed.insecure", PST_CFG_BOOL, OFF(fed.insecure), "false", NULL, NOB,
     "pstrain fed serve/join: plaintext TCP without CURVE keys (only on a trusted network)."},
    {"fed.start_timeout", PST_CFG_FLOAT, OFF(fed.start_timeout), "300", NULL, 0, 1e9,
     "pstrain fed serve: seconds round 1 waits for fed.sites sites before starting with those "
     "connected."},
    {"fed.heartbeat", PST_CFG_FLOAT, OFF(fed.heartbeat), "2", NULL, 0.01, 3600,
     "pstrain fed: seconds between a site's heartbeats, also while it trains."},
    {"fed.heartbeat_timeout", PST_CFG_FLOAT, OFF(fed.heartbeat_timeout), "60", NULL, 0.05, 1e9,
     "pstrain fed: a round stops waiting for an asked site silent this many seconds."},
    {"fed.server_timeout", PST_CFG_FLOAT, OFF(fed.server_timeout), "600", NULL, 0.05, 1e9,
     "pstrain fed join: the site gives up when the server has been silent this many seconds."},
    {"fed.dp.clip", PST_CFG_FLOAT, OFF(fed.dp.clip), "0", NULL, 0, 1e12,
     "pstrain fed: DP-FedAvg clipping norm of each site's update (0: no differential privacy)."},
    {"fed.dp.noise", PST_CFG_FLOAT, OFF(fed.dp.noise), "1.0", NULL, 0, 1e6,
     "pstrain fed: DP noise multiplier z (noise std = z * clip / sites asked)."},
    {"fed.dp.delta", PST_CFG_FLOAT, OFF(fed.dp.delta), "1e-5", NULL, 1e-300, 0.999999,
     "pstrain fed: delta at which the spent epsilon is reported."},
    {"fed.dp.epsilon_budget", PST_CFG_FLOAT, OFF(fed.dp.epsilon_budget), "0", NULL, 0, 1e12,
     "pstrain fed: stop before a round would spend more than this epsilon (0: no budget)."},
    {"fed.attack", PST_CFG_STR, OFF(fed.attack), "none", "none|sign_flip|noise", NOB,
     "pstrain fed simulate (one process): what the attacking sites send in place of their "
     "update, to test the robust rules: sign_flip, minus fed.attack_scale times it; noise, "
     "Gaussian noise of fed.attack_scale times its root mean square."},
    {"fed.attack_sites", PST_CFG_INT, OFF(fed.attack_sites), "0", NULL, 0, 1e6,
     "pstrain fed simulate: how many sites attack (the first ones); with fed.attack."},
    {"fed.attack_scale", PST_CFG_FLOAT, OFF(fed.attack_scale), "10", NULL, 0, 1e6,
     "pstrain fed simulate: the size of the attack, in multiples of the honest update."},

    {"fed.weighting", PST_CFG_STR, OFF(fed.weighting), "samples", "samples|equal|capped", NOB,
     "How much each answered site's update weighs in the round's mean: samples, its claimed "
     "rows (FedAvg); equal, every site alike; capped, its claimed rows but at most 2 times the "
     "round's lower median claim. Under fed serve a site's claim never counts for more than its "
     "first accepted claim (or the rows it registered with)."},
    {"fed.max_sites", PST_CFG_INT, OFF(fed.max_sites), "1000", NULL, 1, 1e6,
     "fed serve: the most site ids that may register; a registration past it is refused (sites "
     "already registered may rejoin)."},
    {"fed.local_state", PST_CFG_STR, OFF(fed.local_state), "reset", "reset|keep", NOB,
     "pstrain fed: a site's local optimizer state (Adam's moments and step count) across rounds: "
     "reset, fresh every round; keep, each site continues its own state from its previous round "
     "(a site's own data, never sent), as one optimizer would over its rows. Sites that are "
     "mpirun jobs run the optimizer on their servers and take reset only."},
    {"fed.server_nesterov", PST_CFG_BOOL, OFF(fed.server_nesterov), "false", NULL, NOB,
     "pstrain fed, with fed.server_momentum > 0: Nesterov server momentum, the server steps "
     "along server_momentum m + update (m already updated) instead of m."},

    {"output.tensorboard", PST_CFG_BOOL, OFF(output.tensorboard), "true", NULL, NOB,
     "Write TensorBoard event files (events.out.tfevents.*) in the run directory: every "
     "number of metrics.jsonl as a scalar (cv folds, bag members and sweep trials as runs of "
     "their own, sweeps with the HParams plugin's data). Open with tensorboard --logdir RUN."},
    {"output.log_steps", PST_CFG_INT, OFF(output.log_steps), "0", NULL, 0, 1e9,
     "Dense training: > 0 adds a record every this many steps (step, epoch, train_loss: the "
     "epoch's running mean, samples_per_s, grad_norm) to metrics.jsonl and the event files; "
     "0: a line per epoch only."},
    {"output.histograms", PST_CFG_BOOL, OFF(output.histograms), "false", NULL, NOB,
     "Dense training: histograms of each layer's weights and gradients every epoch in the event "
     "files (TensorBoard's Histograms and Distributions views)."},

    {"output.test_predictions", PST_CFG_INT, OFF(output.test_predictions), "10000", NULL, 0, 1e8,
     "pstrain train: write test_predictions.csv in the run directory, the true label and the "
     "model's outputs of the first this many rows of the test split (0: no file). The ROC, "
     "precision-recall and reliability curves in report.json come from every row regardless."},
    {"predict.drift_warn", PST_CFG_FLOAT, OFF(drift.warn), "0.25", NULL, 0, 1e6,
     "pstrain predict warns once, naming the worst inputs, when an input's PSI against the "
     "model's training distribution passes this (0.1-0.25 moderate, above 0.25 major); 0: off, "
     "and models without stored distributions are not checked."},
    {NULL, 0, 0, NULL, NULL, 0, 0, NULL},
};

const pst_config_key_t *pst_config_keys(void)
{
    return keys;
}

static const pst_config_key_t *find_key(const char *name)
{
    for (const pst_config_key_t *k = keys; k->key; k++)
        if (strcmp(k->key, name) == 0)
            return k;
    return NULL;
}

static void *field(pst_config_t *cfg, const pst_config_key_t *k)
{
    return (char *)cfg + k->offset;
}

static void free_field(pst_config_t *cfg, const pst_config_key_t *k)
{
    void *p = field(cfg, k);
    if (k->type == PST_CFG_STR) {
        free(*(char **)p);
        *(char **)p = NULL;
    } else if (k->type == PST_CFG_STR_LIST) {
        pst_str_list_t *l = p;
        for (int i = 0; i < l->n; i++)
            free(l->items[i]);
        l->n = 0;
    }
}

/* A value that names one directory or file: 1 to 128 letters, digits, '-', '_' or '.', not
 * starting with '.', so it can never be "..", hidden, or hold a '/'. */
static bool is_plain_name(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 128 || v[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
            return false;
    }
    return true;
}

static bool in_choices(const char *choices, const char *v)
{
    if (strcmp(choices, PST_CONFIG_NAME_CHOICE) == 0)
        return is_plain_name(v);
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, v, n) == 0)
            return true;
        c += len + (bar ? 1 : 0);
    }
    return false;
}

static int parse_number(const pst_config_key_t *k, const char *text, const char *where, double *out,
                        pst_err_t *err)
{
    double v;
    if (pst_parse_double(text, PST_NUM_FINITE | PST_NUM_TRAILING_SPACE, &v) != PST_OK)
        return pst_err_set(err, PST_EINVAL, "%s: %s: '%s' is not a number", where, k->key, text);
    if (k->type == PST_CFG_INT || k->type == PST_CFG_INT_LIST) {
        if (v != floor(v))
            return pst_err_set(err, PST_EINVAL, "%s: %s: '%s' is not an integer", where, k->key,
                               text);
    }
    if (k->min <= k->max && (v < k->min || v > k->max))
        return pst_err_set(err, PST_EINVAL, "%s: %s: %s is outside [%g, %g]", where, k->key, text,
                           k->min, k->max);
    *out = v;
    return PST_OK;
}

static int parse_bool(const pst_config_key_t *k, const char *text, const char *where, bool *out,
                      pst_err_t *err)
{
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = true, PST_OK;
        if (strcasecmp(text, no[i]) == 0)
            return *out = false, PST_OK;
    }
    return pst_err_set(err, PST_EINVAL, "%s: %s: '%s' is not true or false", where, k->key, text);
}

/* Sets a scalar key from text. */
static int set_scalar(pst_config_t *cfg, const pst_config_key_t *k, const char *text,
                      const char *where, pst_err_t *err)
{
    void *p = field(cfg, k);
    double v;
    int rc;
    switch (k->type) {
    case PST_CFG_STR:
        if (k->choices && !in_choices(k->choices, text))
            return pst_err_set(err, PST_EINVAL, "%s: %s: '%s' is not one of %s", where, k->key,
                               text, k->choices);
        free_field(cfg, k);
        *(char **)p = strdup(text);
        return *(char **)p ? PST_OK : PST_ENOMEM;
    case PST_CFG_INT:
        if ((rc = parse_number(k, text, where, &v, err)) != PST_OK)
            return rc;
        *(long *)p = (long)v;
        return PST_OK;
    case PST_CFG_FLOAT:
        if ((rc = parse_number(k, text, where, &v, err)) != PST_OK)
            return rc;
        *(double *)p = v;
        return PST_OK;
    case PST_CFG_BOOL:
        return parse_bool(k, text, where, (bool *)p, err);
    default:
        return pst_err_set(err, PST_EINVAL, "%s: %s expects a list like [a, b]", where, k->key);
    }
}

/* Sets a list key from the items of a YAML sequence node. */
static int set_list(pst_config_t *cfg, const pst_config_key_t *k, yaml_document_t *doc,
                    yaml_node_t *seq, const char *where, pst_err_t *err)
{
    if (k->type != PST_CFG_INT_LIST && k->type != PST_CFG_STR_LIST)
        return pst_err_set(err, PST_EINVAL, "%s: %s expects a single value, not a list", where,
                           k->key);
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n > PST_CONFIG_MAX_LIST)
        return pst_err_set(err, PST_EINVAL, "%s: %s: at most %d items", where, k->key,
                           PST_CONFIG_MAX_LIST);
    free_field(cfg, k);
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
        if (!item || item->type != YAML_SCALAR_NODE)
            return pst_err_set(err, PST_EINVAL, "%s: %s: item %d is not a plain value", where,
                               k->key, i + 1);
        const char *text = (const char *)item->data.scalar.value;
        if (k->type == PST_CFG_INT_LIST) {
            double v;
            int rc = parse_number(k, text, where, &v, err);
            if (rc != PST_OK)
                return rc;
            pst_int_list_t *l = field(cfg, k);
            l->items[i] = (long)v;
            l->n = i + 1;
        } else {
            pst_str_list_t *l = field(cfg, k);
            if (!(l->items[i] = strdup(text)))
                return PST_ENOMEM;
            l->n = i + 1;
        }
    }
    return PST_OK;
}

static int set_node(pst_config_t *cfg, const char *name, yaml_document_t *doc, yaml_node_t *node,
                    const char *origin, pst_err_t *err)
{
    char where[512];
    snprintf(where, sizeof where, "%s:%zu", origin, node->start_mark.line + 1);
    const pst_config_key_t *k = find_key(name);
    if (!k)
        return pst_err_set(err, PST_EINVAL, "%s: unknown configuration key '%s'", where, name);
    if (node->type == YAML_SEQUENCE_NODE)
        return set_list(cfg, k, doc, node, where, err);
    if (node->type != YAML_SCALAR_NODE)
        return pst_err_set(err, PST_EINVAL, "%s: %s expects a value, not a mapping", where, name);
    return set_scalar(cfg, k, (const char *)node->data.scalar.value, where, err);
}

/* Whether a pair before `pair` in map has the same key text (keys are scalars, checked before). */
static bool key_repeated(yaml_document_t *doc, yaml_node_t *map, yaml_node_pair_t *pair,
                         yaml_node_t *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->data.scalar.length == key->data.scalar.length &&
            memcmp(k->data.scalar.value, key->data.scalar.value, key->data.scalar.length) == 0)
            return true;
    }
    return false;
}

/* Every key is checked as it comes (unknown keys end the walk), so the repeated-key check looks
 * back over at most the few hundred pairs a valid file can hold. */
static int walk_mapping(pst_config_t *cfg, const char *prefix, yaml_document_t *doc,
                        yaml_node_t *map, const char *origin, pst_err_t *err)
{
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *key = yaml_document_get_node(doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(doc, pair->value);
        if (!key || !value || key->type != YAML_SCALAR_NODE)
            return pst_err_set(err, PST_EINVAL, "%s: keys must be plain names", origin);
        if (key_repeated(doc, map, pair, key))
            return pst_err_set(err, PST_EINVAL, "%s:%zu: key '%s%s%s' is repeated", origin,
                               key->start_mark.line + 1, prefix, prefix[0] ? "." : "",
                               (const char *)key->data.scalar.value);
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "",
                 (const char *)key->data.scalar.value);
        int rc = value->type == YAML_MAPPING_NODE ? walk_mapping(cfg, name, doc, value, origin, err)
                                                  : set_node(cfg, name, doc, value, origin, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

/* A first pass over the events: nesting deeper than PST_CONFIG_MAX_DEPTH and aliases (which a
 * walk would expand, exponentially for aliases of aliases) are refused before the document is
 * built. Stopping at the depth limit also bounds the parser's own cost per token. */
static int check_shape(const char *text, size_t len, const char *origin, pst_err_t *err)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return pst_err_set(err, PST_ENOMEM, "%s: cannot start the YAML parser", origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int depth = 0, rc = PST_OK;
    for (bool done = false; !done && rc == PST_OK;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev))
            break; /* the load reports syntax errors with their line */
        size_t line = ev.start_mark.line + 1;
        if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
            if (++depth > PST_CONFIG_MAX_DEPTH)
                rc = pst_err_set(err, PST_EFORMAT, "%s:%zu: nested deeper than %d levels", origin,
                                 line, PST_CONFIG_MAX_DEPTH);
        } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (ev.type == YAML_ALIAS_EVENT) {
            rc = pst_err_set(err, PST_EFORMAT, "%s:%zu: YAML aliases are not supported", origin,
                             line);
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int load_yaml(pst_config_t *cfg, const char *text, size_t len, const char *origin,
                     pst_err_t *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int shape = check_shape(text, len, origin, err);
    if (shape != PST_OK)
        return shape;
    if (!yaml_parser_initialize(&parser))
        return pst_err_set(err, PST_ENOMEM, "%s: cannot start the YAML parser", origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc =
            pst_err_set(err, PST_EFORMAT, "%s:%zu: YAML error: %s", origin,
                        parser.problem_mark.line + 1, parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = PST_OK;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE)
        rc = walk_mapping(cfg, "", &doc, root, origin, err);
    else if (root && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        rc = pst_err_set(err, PST_EFORMAT, "%s: the configuration must be a mapping of keys",
                         origin);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int pst_config_init(pst_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* Defaults are written as flat "a.b: v" lines, which the key lookup accepts directly: one
     * document of them all, parsed once (a parser per key made this most of a small run's
     * start-up, and of every federated site's contract check). */
    size_t len = 0;
    for (const pst_config_key_t *k = keys; k->key; k++)
        len += strlen(k->key) + strlen(k->default_value) + 3;
    char *text = malloc(len + 1), *at = text;
    if (text == NULL)
        return PST_ENOMEM;
    for (const pst_config_key_t *k = keys; k->key; k++)
        at += sprintf(at, "%s: %s\n", k->key, k->default_value);
    pst_err_t err;
    int rc = load_yaml(cfg, text, (size_t)(at - text), "defaults", &err);
    free(text);
    return rc == PST_OK ? PST_OK : PST_EINVAL;
}

/* Copies one field of src into dst, duplicating strings. */
static int copy_field(pst_config_t *dst, const pst_config_t *src, const pst_config_key_t *k)
{
    const void *from = (const char *)src + k->offset;
    void *to = field(dst, k);
    free_field(dst, k);
    if (k->type == PST_CFG_STR) {
        const char *v = *(char *const *)from;
        *(char **)to = v ? strdup(v) : NULL;
        return v && !*(char **)to ? PST_ENOMEM : PST_OK;
    }
    if (k->type == PST_CFG_STR_LIST) {
        const pst_str_list_t *a = from;
        pst_str_list_t *b = to;
        for (b->n = 0; b->n < a->n; b->n++)
            if (!(b->items[b->n] = strdup(a->items[b->n])))
                return PST_ENOMEM;
        return PST_OK;
    }
    size_t size = k->type == PST_CFG_INT     ? sizeof(long)
                  : k->type == PST_CFG_FLOAT ? sizeof(double)
                  : k->type == PST_CFG_BOOL  ? sizeof(bool)
                                             : sizeof(pst_int_list_t);
    memcpy(to, from, size);
    return PST_OK;
}

int pst_config_copy_prefix(pst_config_t *dst, const pst_config_t *src, const char *prefix,
                           pst_err_t *err)
{
    size_t len = strlen(prefix);
    for (const pst_config_key_t *k = keys; k->key; k++)
        if (strncmp(k->key, prefix, len) == 0 && copy_field(dst, src, k) != PST_OK)
            return pst_err_set(err, PST_ENOMEM, "config: out of memory copying %s", k->key);
    return PST_OK;
}

void pst_config_fini(pst_config_t *cfg)
{
    for (const pst_config_key_t *k = keys; k->key; k++)
        free_field(cfg, k);
}

int pst_config_load_string(pst_config_t *cfg, const char *yaml, const char *origin, pst_err_t *err)
{
    return load_yaml(cfg, yaml, strlen(yaml), origin, err);
}

int pst_config_load_file(pst_config_t *cfg, const char *path, pst_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len > PST_CONFIG_MAX_BYTES) {
            free(buf);
            fclose(f);
            return pst_err_set(err, PST_EFORMAT, "%s: larger than %d bytes: not a configuration",
                               path, PST_CONFIG_MAX_BYTES);
        }
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return PST_ENOMEM;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    int read_failed = ferror(f);
    fclose(f);
    if (read_failed) {
        free(buf);
        return pst_err_set(err, PST_EIO, "%s: read error", path);
    }
    buf[len] = '\0';
    int rc = load_yaml(cfg, buf, len, path, err);
    free(buf);
    return rc;
}

int pst_config_set(pst_config_t *cfg, const char *assignment, pst_err_t *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return pst_err_set(err, PST_EINVAL, "--set %s: expected key=value", assignment);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(eq - assignment), assignment);
    if (!find_key(name))
        return pst_err_set(err, PST_EINVAL, "--set: unknown configuration key '%s'", name);
    const char *value = eq + 1;
    size_t len = strlen(name) + strlen(value) + 8;
    char *line = malloc(len);
    if (!line)
        return PST_ENOMEM;
    /* An empty value means the empty string; quote it so YAML does not read null. */
    snprintf(line, len, "%s: %s\n", name, value[0] ? value : "\"\"");
    int rc = load_yaml(cfg, line, strlen(line), "--set", err);
    free(line);
    return rc;
}

/* train.prune.* and train.teacher: the schedule must fit in the run. */
static int validate_compression(const pst_config_t *cfg, pst_err_t *err)
{
    if (cfg->train.prune.sparsity > 0) {
        if (cfg->train.prune.start > cfg->train.prune.end)
            return pst_err_set(err, PST_EINVAL,
                               "train.prune.start (%ld) is after train.prune.end (%ld)",
                               cfg->train.prune.start, cfg->train.prune.end);
        if (cfg->train.prune.end > cfg->train.epochs)
            return pst_err_set(err, PST_EINVAL,
                               "train.prune.end (%ld) is after the last epoch (train.epochs %ld)",
                               cfg->train.prune.end, cfg->train.epochs);
    }
    return PST_OK;
}

int pst_config_validate(const pst_config_t *cfg, pst_err_t *err)
{
    if (!cfg->data.train || !cfg->data.train[0])
        return pst_err_set(err, PST_EINVAL, "data.train: no training data file given");
    if (!cfg->data.test[0]) {
        double sum = cfg->data.train_fraction + cfg->data.val_fraction + cfg->data.test_fraction;
        if (fabs(sum - 1.0) > 1e-6)
            return pst_err_set(err, PST_EINVAL,
                               "data.train_fraction + data.val_fraction + data.test_fraction "
                               "must add up to 1 (they add up to %g)",
                               sum);
        if (cfg->data.train_fraction <= 0)
            return pst_err_set(err, PST_EINVAL, "data.train_fraction must be above 0");
    }
    if (cfg->model.layers.n > 0 && cfg->model.hidden.n > 0)
        return pst_err_set(err, PST_EINVAL, "model.layers and model.hidden are exclusive");
    int rc = validate_compression(cfg, err);
    if (rc != PST_OK)
        return rc;
    pst_augment_t aug;
    return pst_augment_parse(&aug, cfg->data.augment.items, cfg->data.augment.n, err);
}

/* Writes a string as a YAML scalar that reads back exactly as s: plain when that style keeps its
 * meaning, else double-quoted with every character YAML would fold or drop there escaped (control
 * characters C0 and C1, the line breaks LS and PS of YAML 1.1, the BOM and U+FFFE/U+FFFF, which
 * YAML refuses or folds) rather than written raw. */
static void write_string(FILE *out, const char *s)
{
    size_t n = strlen(s);
    /* a leading "-" or "?" can start a sequence or a complex key; trailing blanks are trimmed */
    bool plain = n > 0 && !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]) &&
                 s[0] != '-' && s[0] != '?';
    for (const char *c = s; *c && plain; c++)
        if (strchr(":#{}[],&*!|>'\"%@`", *c) || (unsigned char)*c < 0x20 ||
            (unsigned char)*c >= 0x7f)
            plain = false;
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            fputc('\\', out);
            fputc(*c, out);
        } else if (*c < 0x20 || *c == 0x7f) {
            fprintf(out, "\\x%02x", *c);
        } else if (c[0] == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f) { /* C1 controls, NEL */
            fprintf(out, "\\x%02x", c[1]), c++;
        } else if (c[0] == 0xef && ((c[1] == 0xbb && c[2] == 0xbf) ||
                                    (c[1] == 0xbf && (c[2] == 0xbe || c[2] == 0xbf)))) {
            fprintf(out, "\\u%s", c[1] == 0xbb ? "feff" : c[2] == 0xbe ? "fffe" : "ffff"), c += 2;
        } else if (c[0] == 0xe2 && c[1] == 0x80 && (c[2] == 0xa8 || c[2] == 0xa9)) {
            fputs(c[2] == 0xa8 ? "\\L" : "\\P", out), c += 2;
        } else {
            fputc(*c, out);
        }
    }
    fputc('"', out);
}

static void write_value(const pst_config_t *cfg, const pst_config_key_t *k, FILE *out)
{
    const void *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case PST_CFG_STR:
        write_string(out, *(char *const *)p ? *(char *const *)p : "");
        break;
    case PST_CFG_INT:
        fprintf(out, "%ld", *(const long *)p);
        break;
    case PST_CFG_FLOAT:
        fprintf(out, "%.9g", *(const double *)p);
        break;
    case PST_CFG_BOOL:
        fputs(*(const bool *)p ? "true" : "false", out);
        break;
    case PST_CFG_INT_LIST: {
        const pst_int_list_t *l = p;
        fputc('[', out);
        for (int i = 0; i < l->n; i++)
            fprintf(out, "%s%ld", i ? ", " : "", l->items[i]);
        fputc(']', out);
        break;
    }
    case PST_CFG_STR_LIST: {
        const pst_str_list_t *l = p;
        fputc('[', out);
        for (int i = 0; i < l->n; i++) {
            fputs(i ? ", " : "", out);
            write_string(out, l->items[i]);
        }
        fputc(']', out);
        break;
    }
    }
}

/* Length of a key's section ("train" of "train.dp.clip"), 0 for a top-level key. */
static size_t section_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : 0;
}

static bool same_section(const char *a, const char *b)
{
    size_t n = section_len(a);
    return n == section_len(b) && strncmp(a, b, n) == 0;
}

/* Top-level keys first, then each section once, in the order sections first appear in the table
 * (a section's keys need not be adjacent there: YAML refuses a repeated mapping key). */
int pst_config_write(const pst_config_t *cfg, FILE *out)
{
    for (const pst_config_key_t *k = keys; k->key; k++)
        if (!section_len(k->key)) {
            fprintf(out, "%s: ", k->key);
            write_value(cfg, k, out);
            fputc('\n', out);
        }
    for (const pst_config_key_t *k = keys; k->key; k++) {
        size_t n = section_len(k->key);
        bool seen = false;
        for (const pst_config_key_t *e = keys; e < k && !seen; e++)
            seen = same_section(e->key, k->key);
        if (!n || seen)
            continue;
        fprintf(out, "%.*s:\n", (int)n, k->key);
        for (const pst_config_key_t *m = k; m->key; m++)
            if (same_section(m->key, k->key)) {
                fprintf(out, "  %s: ", m->key + n + 1);
                write_value(cfg, m, out);
                fputc('\n', out);
            }
    }
    return ferror(out) ? PST_EIO : PST_OK;
}

char *pst_config_to_string(const pst_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    pst_config_write(cfg, f);
    fclose(f);
    return buf;
}

void pst_config_write_reference(FILE *out)
{
    fprintf(out, "| key | default | meaning |\n|---|---|---|\n");
    for (const pst_config_key_t *k = keys; k->key; k++) {
        fprintf(out, "| `%s` | `%s` | %s", k->key, k->default_value[0] ? k->default_value : "\"\"",
                k->help);
        if (k->choices && strcmp(k->choices, PST_CONFIG_NAME_CHOICE) == 0)
            fprintf(out, " Letters, digits, `-`, `_` and `.`, not starting with `.`.");
        else if (k->choices)
            fprintf(out, " One of: `%s`.", k->choices);
        fprintf(out, " |\n");
    }
}
