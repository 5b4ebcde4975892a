/* CSV tokenizer: a byte state machine over a refilled buffer (gzip or plain file) or memory. */
#include "common/data/csvtok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/data/dataload.h"

/* END and READ_ERROR are far from the PST_E* codes that the field readers also return. */
enum { CHUNK = 1 << 20, END = -100, READ_ERROR = -101 };

struct pst_csvtok {
    char *name;
    gzFile file; /* NULL when reading memory */
    char *owned; /* the refill buffer of a file; (chunk) */
    size_t chunk;
    const char *buf; /* bytes buf[pos..len) are unread */
    size_t pos, len;
    bool started, failed;
    size_t line; /* line of the next unread byte, 1-based */
    /* the record being built: field texts back to back, each NUL-terminated */
    char *text;
    size_t text_len, text_cap;
    size_t *starts; // (cap_fields) offset of each field in text
    size_t cap_fields;
    pst_csv_record_t rec;
};

static pst_csvtok_t *tok_new(const char *name)
{
    pst_csvtok_t *t = calloc(1, sizeof *t);
    if (t == NULL || (t->name = strdup(name)) == NULL) {
        free(t);
        return NULL;
    }
    t->line = 1;
    return t;
}

pst_csvtok_t *pst_csvtok_open(const char *path, pst_err_t *err)
{
    pst_csvtok_t *t = tok_new(path);
    size_t chunk = pst_data_buffer_bytes(path, CHUNK);
    if (t == NULL || (t->owned = malloc(chunk)) == NULL) {
        pst_csvtok_destroy(&t);
        pst_err_set(err, PST_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    if ((t->file = gzopen(path, "rb")) == NULL) {
        pst_err_set(err, PST_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
        pst_csvtok_destroy(&t);
        return NULL;
    }
    gzbuffer(t->file, (unsigned)chunk);
    t->chunk = chunk;
    t->buf = t->owned;
    return t;
}

pst_csvtok_t *pst_csvtok_new_mem(const char *buf, size_t len, const char *name)
{
    pst_csvtok_t *t = tok_new(name);
    if (t != NULL) {
        t->buf = buf;
        t->len = len;
    }
    return t;
}

void pst_csvtok_destroy(pst_csvtok_t **self_p)
{
    pst_csvtok_t *t = self_p ? *self_p : NULL;
    if (t == NULL)
        return;
    if (t->file)
        gzclose(t->file);
    free(t->owned);
    free(t->name);
    free(t->text);
    free(t->starts);
    free(t->rec.fields);
    free(t->rec.lens);
    free(t->rec.quoted);
    free(t);
    *self_p = NULL;
}

const char *pst_csvtok_name(const pst_csvtok_t *t)
{
    return t->name;
}

/* Refills the buffer of a file; false at its end or on a read error (t->failed). */
static bool refill(pst_csvtok_t *t)
{
    if (t->file == NULL || t->failed)
        return false;
    int got = gzread(t->file, t->owned, (unsigned)t->chunk);
    if (got < 0)
        t->failed = true;
    if (got <= 0)
        return false;
    t->pos = 0;
    t->len = (size_t)got;
    return true;
}

static inline int peek_byte(pst_csvtok_t *t)
{
    if (t->pos == t->len && !refill(t))
        return t->failed ? READ_ERROR : END;
    return (unsigned char)t->buf[t->pos];
}

static inline int next_byte(pst_csvtok_t *t)
{
    int c = peek_byte(t);
    if (c >= 0) {
        t->pos++;
        if (c == '\n')
            t->line++;
    }
    return c;
}

static int put_byte(pst_csvtok_t *t, char c, pst_err_t *err)
{
    if (t->text_len == t->text_cap) {
        if (t->text_cap >= PST_CSVTOK_MAX_RECORD)
            return pst_err_set(err, PST_EFORMAT, "%s:%zu: record longer than %u bytes", t->name,
                               t->rec.line, PST_CSVTOK_MAX_RECORD);
        size_t cap = t->text_cap ? 2 * t->text_cap : 256;
        char *grown = realloc(t->text, cap);
        if (grown == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", t->name, t->rec.line);
        t->text = grown;
        t->text_cap = cap;
    }
    t->text[t->text_len++] = c;
    return PST_OK;
}

/* Starts field number rec.n_fields at the current end of the text. */
static int begin_field(pst_csvtok_t *t, pst_err_t *err)
{
    size_t n = t->rec.n_fields;
    if (n == t->cap_fields) {
        size_t cap = t->cap_fields ? 2 * t->cap_fields : 16;
        size_t *starts = realloc(t->starts, cap * sizeof *starts);
        if (starts)
            t->starts = starts;
        char **fields = starts ? realloc(t->rec.fields, cap * sizeof *fields) : NULL;
        if (fields)
            t->rec.fields = fields;
        size_t *lens = fields ? realloc(t->rec.lens, cap * sizeof *lens) : NULL;
        if (lens)
            t->rec.lens = lens;
        bool *quoted = lens ? realloc(t->rec.quoted, cap * sizeof *quoted) : NULL;
        if (quoted == NULL)
            return pst_err_set(err, PST_ENOMEM, "%s:%zu: out of memory", t->name, t->rec.line);
        t->rec.quoted = quoted;
        t->cap_fields = cap;
    }
    t->starts[n] = t->text_len;
    t->rec.quoted[n] = false;
    t->rec.n_fields = n + 1;
    return PST_OK;
}

static bool is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* Reads a quoted field's content after its opening quote, up to and past the closing quote. */
static int read_quoted(pst_csvtok_t *t, pst_err_t *err)
{
    size_t start_line = t->line;
    for (;;) {
        int c = next_byte(t);
        if (c == READ_ERROR)
            return PST_EIO;
        if (c == END)
            return pst_err_set(err, PST_EFORMAT, "%s:%zu: field %zu: unterminated quote", t->name,
                               start_line, t->rec.n_fields);
        if (c == '"') {
            if (peek_byte(t) != '"')
                return PST_OK;
            next_byte(t);
        }
        int rc = put_byte(t, (char)c, err);
        if (rc != PST_OK)
            return rc;
    }
}

/* After a closing quote: blanks, then a comma, a line end or the end of input. Returns the
 * delimiter (',' or '\n' or END). */
static int after_quote(pst_csvtok_t *t, pst_err_t *err)
{
    int c;
    while (is_blank(c = peek_byte(t)))
        next_byte(t);
    if (c == '\r') {
        next_byte(t);
        c = peek_byte(t);
        if (c != '\n')
            return pst_err_set(err, PST_EFORMAT, "%s:%zu: field %zu: text after the closing quote",
                               t->name, t->line, t->rec.n_fields);
    }
    if (c == ',' || c == '\n') {
        next_byte(t);
        return c;
    }
    if (c == END || c == READ_ERROR)
        return c == END ? END : PST_EIO;
    return pst_err_set(err, PST_EFORMAT, "%s:%zu: field %zu: text after the closing quote", t->name,
                       t->line, t->rec.n_fields);
}

/* Reads an unquoted field up to its delimiter, trimming blanks at both ends (and the CR of a
 * CRLF). Returns the delimiter (',' or '\n' or END). */
static int read_plain(pst_csvtok_t *t, pst_err_t *err)
{
    size_t start = t->text_len;
    int c;
    while ((c = next_byte(t)) >= 0 && c != ',' && c != '\n') {
        int rc = put_byte(t, (char)c, err);
        if (rc != PST_OK)
            return rc;
    }
    if (c == READ_ERROR)
        return PST_EIO;
    while (t->text_len > start &&
           (is_blank(t->text[t->text_len - 1]) || t->text[t->text_len - 1] == '\r'))
        t->text_len--;
    return c;
}

/* One field: leading blanks, then quoted or plain text. Returns its delimiter or an error. */
static int read_field(pst_csvtok_t *t, pst_err_t *err)
{
    int rc = begin_field(t, err);
    if (rc != PST_OK)
        return rc;
    int c;
    while (is_blank(c = peek_byte(t)))
        next_byte(t);
    if (c == '"') {
        next_byte(t);
        t->rec.quoted[t->rec.n_fields - 1] = true;
        rc = read_quoted(t, err);
        if (rc == PST_OK)
            rc = after_quote(t, err);
    } else {
        rc = read_plain(t, err);
    }
    if (rc >= 0 || rc == END) {
        int end_rc = put_byte(t, '\0', err);
        if (end_rc != PST_OK)
            return end_rc;
    }
    return rc;
}

static void skip_bom(pst_csvtok_t *t)
{
    t->started = true;
    if (peek_byte(t) != 0xEF)
        return;
    /* The three bytes may straddle a refill only for a file under 3 bytes long: then it is no
     * BOM and nothing is lost, since a refill happens only when the buffer is empty. */
    if (t->len - t->pos >= 3 && (unsigned char)t->buf[t->pos + 1] == 0xBB &&
        (unsigned char)t->buf[t->pos + 2] == 0xBF)
        t->pos += 3;
}

static bool record_is_blank(const pst_csvtok_t *t)
{
    return t->rec.n_fields == 1 && !t->rec.quoted[0] && t->text[t->starts[0]] == '\0';
}

int pst_csvtok_next(pst_csvtok_t *t, const pst_csv_record_t **rec, pst_err_t *err)
{
    if (!t->started)
        skip_bom(t);
    for (;;) {
        t->rec.n_fields = 0;
        t->text_len = 0;
        t->rec.line = t->line;
        if (peek_byte(t) == END)
            return t->failed ? pst_err_set(err, PST_EIO, "%s: read failed", t->name) : 0;
        int delim;
        do {
            delim = read_field(t, err);
        } while (delim == ',');
        if (delim == PST_EIO || t->failed)
            return pst_err_set(err, PST_EIO, "%s:%zu: read failed", t->name, t->line);
        if (delim < 0 && delim != END)
            return delim;
        if (record_is_blank(t))
            continue;
        for (size_t i = 0; i < t->rec.n_fields; i++) {
            size_t next = i + 1 < t->rec.n_fields ? t->starts[i + 1] : t->text_len;
            t->rec.fields[i] = t->text + t->starts[i];
            t->rec.lens[i] = next - t->starts[i] - 1; /* without the NUL */
        }
        *rec = &t->rec;
        return 1;
    }
}
