/* Classification and regression metrics: confusion matrix, per-class and averaged scores,
 * log-loss, ROC-AUC (Mann-Whitney, ties count one half), MSE, MAE and R^2. */
#include "common/eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Log-loss clamps probabilities to [P_MIN, 1 - P_MIN], as scikit-learn does. */
#define P_MIN 1e-15

/* One scored example for ROC-AUC. */
typedef struct scored {
    float score;
    int positive;
} scored_t;

/* The true class of row i, or -1 when the label is not an index in 0..n_classes-1. */
static int class_of(float label, int n_classes)
{
    if (!(label >= 0.0f && label <= (float)(n_classes - 1)) || label != floorf(label))
        return -1;
    return (int)label;
}

/* Argmax of one probability row; the first of equal maxima wins, as numpy.argmax. */
static int argmax(const float *row, int n_classes)
{
    int best = 0;
    for (int c = 1; c < n_classes; c++) {
        if (row[c] > row[best])
            best = c;
    }
    return best;
}

static int check_row(size_t i, int n_classes, const float *prob, const int *pred,
                     const float *labels, pst_err_t *err)
{
    if (class_of(labels[i], n_classes) < 0)
        return pst_err_set(err, PST_ERANGE, "metrics: row %zu: label %g is not a class in 0..%d", i,
                           labels[i], n_classes - 1);
    if (pred != NULL && (pred[i] < 0 || pred[i] >= n_classes))
        return pst_err_set(err, PST_ERANGE,
                           "metrics: row %zu: predicted class %d is not a class in 0..%d", i,
                           pred[i], n_classes - 1);
    for (int c = 0; prob != NULL && c < n_classes; c++) {
        float p = prob[i * (size_t)n_classes + c];
        if (!isfinite(p))
            return pst_err_set(err, PST_ENUMERIC, "metrics: row %zu: probability of class %d is %g",
                               i, c, p);
    }
    return PST_OK;
}

static int check_input(int n_classes, size_t n, const float *prob, const int *pred,
                       const float *labels, pst_err_t *err)
{
    if (n_classes < 1)
        return pst_err_set(err, PST_EINVAL, "metrics: %d classes", n_classes);
    if (n == 0)
        return pst_err_set(err, PST_EINVAL, "metrics: no rows to evaluate");
    if (labels == NULL || (prob == NULL && pred == NULL))
        return pst_err_set(err, PST_EINVAL,
                           "metrics: labels and probabilities or predictions "
                           "are required");
    for (size_t i = 0; i < n; i++) {
        int rc = check_row(i, n_classes, prob, pred, labels, err);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

static int alloc_arrays(pst_class_metrics_t *m, int k)
{
    size_t kk = (size_t)k;
    m->confusion = calloc(kk * kk, sizeof *m->confusion);
    m->precision = calloc(kk, sizeof(double));
    m->recall = calloc(kk, sizeof(double));
    m->f1 = calloc(kk, sizeof(double));
    m->specificity = calloc(kk, sizeof(double));
    if (m->confusion == NULL || m->precision == NULL || m->recall == NULL || m->f1 == NULL ||
        m->specificity == NULL)
        return PST_ENOMEM;
    return PST_OK;
}

static void fill_confusion(pst_class_metrics_t *m, const float *prob, const int *pred,
                           const float *labels)
{
    int k = m->n_classes;
    for (size_t i = 0; i < m->n; i++) {
        int truth = class_of(labels[i], k);
        int guess = pred != NULL ? pred[i] : argmax(prob + i * (size_t)k, k);
        m->confusion[(size_t)truth * k + guess]++;
    }
}

/* num / den, 0 when den is 0 (scikit-learn's zero_division=0). */
static double ratio(double num, double den)
{
    return den > 0.0 ? num / den : 0.0;
}

/* Per-class precision, recall, F1 and specificity, their macro means (unweighted, over all
 * n_classes), micro averages and accuracy. */
static void class_scores(pst_class_metrics_t *m)
{
    int k = m->n_classes;
    double n = (double)m->n, trace = 0.0, sum_tn = 0.0, sum_fp = 0.0;
    double mp = 0.0, mr = 0.0, mf = 0.0, ms = 0.0;
    for (int c = 0; c < k; c++) {
        double tp = (double)m->confusion[(size_t)c * k + c], row = 0.0, col = 0.0;
        for (int j = 0; j < k; j++) {
            row += (double)m->confusion[(size_t)c * k + j];
            col += (double)m->confusion[(size_t)j * k + c];
        }
        double fp = col - tp, fn = row - tp, tn = n - tp - fp - fn;
        m->precision[c] = ratio(tp, tp + fp);
        m->recall[c] = ratio(tp, tp + fn);
        m->f1[c] = ratio(2.0 * m->precision[c] * m->recall[c], m->precision[c] + m->recall[c]);
        m->specificity[c] = ratio(tn, tn + fp);
        mp += m->precision[c], mr += m->recall[c], mf += m->f1[c], ms += m->specificity[c];
        trace += tp, sum_tn += tn, sum_fp += fp;
    }
    m->accuracy = trace / n;
    m->precision_macro = mp / k, m->recall_macro = mr / k;
    m->f1_macro = mf / k, m->specificity_macro = ms / k;
    /* Single-label: every false positive of one class is a false negative of another. */
    m->precision_micro = m->recall_micro = m->f1_micro = m->accuracy;
    m->specificity_micro = ratio(sum_tn, sum_tn + sum_fp);
}

static double log_loss(const float *prob, const float *labels, size_t n, int k)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = prob[i * (size_t)k + class_of(labels[i], k)];
        p = p < P_MIN ? P_MIN : (p > 1.0 - P_MIN ? 1.0 - P_MIN : p);
        sum -= log(p);
    }
    return sum / (double)n;
}

double pst_log_loss_binary(const float *prob, const float *y, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = fmin(fmax(prob[i], P_MIN), 1.0 - P_MIN);
        sum -= y[i] * log(p) + (1.0 - y[i]) * log(1.0 - p);
    }
    return n > 0 ? sum / (double)n : 0.0;
}

void pst_binary_metrics_none(pst_binary_metrics_t *m)
{
    *m = (pst_binary_metrics_t){0, NAN, NAN, NAN, NAN};
}

void pst_binary_metrics_compute(pst_binary_metrics_t *m, const float *prob, const float *y,
                                size_t n)
{
    double pred = 0.0, positives = 0.0;
    for (size_t i = 0; i < n; i++) {
        pred += prob[i];
        positives += y[i];
    }
    m->n = n;
    m->log_loss = pst_log_loss_binary(prob, y, n);
    m->roc_auc = pst_roc_auc(prob, y, n);
    m->mean_pred = pred / (double)n;
    m->observed = positives / (double)n;
}

static int by_score(const void *a, const void *b)
{
    float x = ((const scored_t *)a)->score, y = ((const scored_t *)b)->score;
    return (x > y) - (x < y);
}

/* Mann-Whitney U over sorted examples: the mean rank of a tie group goes to each member. Sorts s.
 * NaN when one class is absent. */
static double auc_of(scored_t *s, size_t n)
{
    qsort(s, n, sizeof *s, by_score);
    double n_pos = 0.0, rank_sum = 0.0;
    for (size_t start = 0; start < n;) {
        size_t end = start;
        double pos = 0.0;
        while (end < n && s[end].score == s[start].score)
            pos += s[end++].positive;
        rank_sum += pos * 0.5 * ((double)start + 1.0 + (double)end); /* ranks start+1..end */
        n_pos += pos;
        start = end;
    }
    double n_neg = (double)n - n_pos;
    if (n_pos == 0.0 || n_neg == 0.0)
        return NAN;
    return (rank_sum - n_pos * (n_pos + 1.0) * 0.5) / (n_pos * n_neg);
}

/* Binary AUC from the 2-column probabilities: the score is p(class 1). NaN if out of memory. */
static double binary_auc(const float *prob, const float *labels, size_t n)
{
    scored_t *s = malloc(n * sizeof *s);
    if (s == NULL)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        s[i].score = prob[2 * i + 1];
        s[i].positive = labels[i] == 1.0f;
    }
    double auc = auc_of(s, n);
    free(s);
    return auc;
}

int pst_class_metrics_compute(pst_class_metrics_t *m, int n_classes, size_t n, const float *prob,
                              const int *pred, const float *labels, pst_err_t *err)
{
    memset(m, 0, sizeof *m);
    int rc = check_input(n_classes, n, prob, pred, labels, err);
    if (rc != PST_OK)
        return rc;
    m->n_classes = n_classes;
    m->n = n;
    if (alloc_arrays(m, n_classes) != PST_OK) {
        pst_class_metrics_fini(m);
        return pst_err_set(err, PST_ENOMEM, "metrics: no memory for %d classes", n_classes);
    }
    fill_confusion(m, prob, pred, labels);
    class_scores(m);
    m->log_loss = prob != NULL ? log_loss(prob, labels, n, n_classes) : NAN;
    m->roc_auc = prob != NULL && n_classes == 2 ? binary_auc(prob, labels, n) : NAN;
    return PST_OK;
}

void pst_class_metrics_fini(pst_class_metrics_t *m)
{
    if (m == NULL)
        return;
    free(m->confusion);
    free(m->precision);
    free(m->recall);
    free(m->f1);
    free(m->specificity);
    m->confusion = NULL;
    m->precision = m->recall = m->f1 = m->specificity = NULL;
}

/* R^2 = 1 - SSE / SST; a constant target (SST = 0) gives 1 when the fit is perfect and 0
 * otherwise, as scikit-learn's r2_score (force_finite). n = 0 gives NaN everywhere. */
void pst_reg_metrics_compute(pst_reg_metrics_t *m, size_t n, const float *pred, const float *target)
{
    m->n = n;
    if (n == 0) {
        m->mse = m->mae = m->r2 = NAN;
        return;
    }
    double mean = 0.0, sse = 0.0, sae = 0.0, sst = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += target[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double e = (double)pred[i] - target[i], d = (double)target[i] - mean;
        sse += e * e;
        sae += fabs(e);
        sst += d * d;
    }
    m->mse = sse / (double)n;
    m->mae = sae / (double)n;
    if (sst > 0.0)
        m->r2 = 1.0 - sse / sst;
    else
        m->r2 = sse == 0.0 ? 1.0 : 0.0;
}

double pst_roc_auc(const float *score, const float *label01, size_t n)
{
    scored_t *s = malloc((n > 0 ? n : 1) * sizeof *s);
    if (s == NULL)
        return NAN;
    double auc = NAN;
    size_t i = 0;
    for (; i < n; i++) {
        if (isnan(score[i]) || (label01[i] != 0.0f && label01[i] != 1.0f))
            break;
        s[i].score = score[i];
        s[i].positive = label01[i] == 1.0f;
    }
    if (i == n)
        auc = auc_of(s, n);
    free(s);
    return auc;
}

int pst_class_metrics_from_outputs(pst_class_metrics_t *m, int n_classes, size_t n,
                                   const float *out, int n_out, const float *labels, pst_err_t *err)
{
    if (n_out != 1)
        return pst_class_metrics_compute(m, n_classes, n, out, NULL, labels, err);
    float *prob = malloc((n ? n : 1) * 2 * sizeof(float));
    if (!prob) {
        memset(m, 0, sizeof *m);
        return pst_err_set(err, PST_ENOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        prob[2 * i] = 1.0f - out[i];
        prob[2 * i + 1] = out[i];
    }
    int rc = pst_class_metrics_compute(m, n_classes, n, prob, NULL, labels, err);
    free(prob);
    return rc;
}
