/* ONNX graph builder over the protoc-c messages of onnx.proto: every message, string and value
 * array lives in the builder's arena and is freed with it. */
#include "common/onnx/onnxgraph.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.pb-c.h"

#define MAX_ATTRS 8 /* per node: the exporters' ops take at most four */

/* A growable array of pointers, for the repeated fields of the graph and the model. */
typedef struct ptr_list {
    void **items;
    size_t n, cap;
} ptr_list_t;

struct pst_onnx_graph {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    ptr_list_t opsets, metadata, nodes, initializers, inputs, outputs;
    ptr_list_t names; /* every tensor name, for pst_onnx_graph_unique */
    ptr_list_t arena; /* every other allocation */
    int failure;      /* first failure, PST_OK while none */
};

struct pst_onnx_node {
    Onnx__NodeProto proto;
};

static int fail(pst_onnx_graph_t *g, int rc)
{
    if (g->failure == PST_OK)
        g->failure = rc;
    return rc;
}

static int list_push(ptr_list_t *l, void *item)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        void **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return PST_ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = item;
    return PST_OK;
}

/* Zeroed memory owned by the arena, or NULL (failure recorded). */
static void *alloc(pst_onnx_graph_t *g, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (p && list_push(&g->arena, p) == PST_OK)
        return p;
    free(p);
    fail(g, PST_ENOMEM);
    return NULL;
}

static void *copy(pst_onnx_graph_t *g, const void *src, size_t size)
{
    void *p = alloc(g, size);
    if (p && size)
        memcpy(p, src, size);
    return p;
}

static char *copy_str(pst_onnx_graph_t *g, const char *s)
{
    return s ? copy(g, s, strlen(s) + 1) : NULL;
}

static int remember_name(pst_onnx_graph_t *g, const char *name)
{
    char *own = copy_str(g, name);
    return own && list_push(&g->names, own) == PST_OK ? PST_OK : fail(g, PST_ENOMEM);
}

pst_onnx_graph_t *pst_onnx_graph_new(const char *name, pst_err_t *err)
{
    pst_onnx_graph_t *g = calloc(1, sizeof *g);
    if (!g) {
        pst_err_set(err, PST_ENOMEM, "out of memory");
        return NULL;
    }
    onnx__model_proto__init(&g->model);
    onnx__graph_proto__init(&g->graph);
    g->model.has_ir_version = 1;
    g->model.ir_version = PST_ONNX_IR_VERSION;
    g->model.graph = &g->graph;
    g->graph.name = copy_str(g, name);
    if (pst_onnx_graph_opset(g, "", PST_ONNX_OPSET) != PST_OK || !g->graph.name) {
        pst_onnx_graph_destroy(&g);
        pst_err_set(err, PST_ENOMEM, "out of memory");
    }
    return g;
}

void pst_onnx_graph_destroy(pst_onnx_graph_t **self_p)
{
    pst_onnx_graph_t *g = self_p ? *self_p : NULL;
    if (!g)
        return;
    for (size_t i = 0; i < g->arena.n; i++)
        free(g->arena.items[i]);
    ptr_list_t *lists[] = {&g->opsets, &g->metadata, &g->nodes, &g->initializers,
                           &g->inputs, &g->outputs,  &g->names, &g->arena};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        free(lists[i]->items);
    free(g);
    *self_p = NULL;
}

int pst_onnx_graph_opset(pst_onnx_graph_t *g, const char *domain, int64_t version)
{
    for (size_t i = 0; i < g->opsets.n; i++) {
        Onnx__OperatorSetIdProto *op = g->opsets.items[i];
        if (strcmp(op->domain, domain) == 0) {
            op->version = version;
            return PST_OK;
        }
    }
    Onnx__OperatorSetIdProto *op = alloc(g, sizeof *op);
    if (!op)
        return PST_ENOMEM;
    onnx__operator_set_id_proto__init(op);
    op->domain = copy_str(g, domain);
    op->has_version = 1;
    op->version = version;
    return op->domain && list_push(&g->opsets, op) == PST_OK ? PST_OK : fail(g, PST_ENOMEM);
}

int pst_onnx_graph_describe(pst_onnx_graph_t *g, const char *producer, const char *version,
                            const char *doc)
{
    g->model.producer_name = copy_str(g, producer);
    g->model.producer_version = copy_str(g, version);
    g->model.doc_string = copy_str(g, doc);
    return g->failure;
}

int pst_onnx_graph_metadata(pst_onnx_graph_t *g, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = alloc(g, sizeof *e);
    if (!e)
        return PST_ENOMEM;
    onnx__string_string_entry_proto__init(e);
    e->key = copy_str(g, key);
    e->value = copy_str(g, value);
    if (!e->key || !e->value || list_push(&g->metadata, e) != PST_OK)
        return fail(g, PST_ENOMEM);
    return PST_OK;
}

static Onnx__TensorShapeProto__Dimension *dimension(pst_onnx_graph_t *g, int64_t size)
{
    Onnx__TensorShapeProto__Dimension *d = alloc(g, sizeof *d);
    if (!d)
        return NULL;
    onnx__tensor_shape_proto__dimension__init(d);
    if (size == PST_ONNX_BATCH) {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = copy_str(g, "N");
    } else {
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = size;
    }
    return d;
}

static Onnx__ValueInfoProto *value_info(pst_onnx_graph_t *g, const char *name, pst_onnx_type_t type,
                                        int n_dims, const int64_t *dims, const char *doc)
{
    Onnx__ValueInfoProto *v = alloc(g, sizeof *v);
    Onnx__TypeProto *t = alloc(g, sizeof *t);
    Onnx__TypeProto__Tensor *tt = alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *shape = alloc(g, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = alloc(g, (size_t)n_dims * sizeof *dim);
    if (!v || !t || !tt || !shape || !dim)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(shape);
    for (int i = 0; i < n_dims; i++)
        if (!(dim[i] = dimension(g, dims[i])))
            return NULL;
    shape->n_dim = (size_t)n_dims;
    shape->dim = dim;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)type;
    tt->shape = shape;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    v->name = copy_str(g, name);
    v->doc_string = copy_str(g, doc);
    return v->name ? v : NULL;
}

int pst_onnx_graph_input(pst_onnx_graph_t *g, const char *name, pst_onnx_type_t type, int n_dims,
                         const int64_t *dims, const char *doc)
{
    Onnx__ValueInfoProto *v = value_info(g, name, type, n_dims, dims, doc);
    if (!v || list_push(&g->inputs, v) != PST_OK)
        return fail(g, PST_ENOMEM);
    return remember_name(g, name);
}

int pst_onnx_graph_output(pst_onnx_graph_t *g, const char *name, pst_onnx_type_t type, int n_dims,
                          const int64_t *dims, const char *doc)
{
    Onnx__ValueInfoProto *v = value_info(g, name, type, n_dims, dims, doc);
    return v && list_push(&g->outputs, v) == PST_OK ? PST_OK : fail(g, PST_ENOMEM);
}

/* An initializer with its dims set and no values yet; *count receives prod(dims). */
static Onnx__TensorProto *tensor(pst_onnx_graph_t *g, const char *name, pst_onnx_type_t type,
                                 int n_dims, const int64_t *dims, size_t *count)
{
    Onnx__TensorProto *t = alloc(g, sizeof *t);
    int64_t *d = copy(g, dims, (size_t)n_dims * sizeof *dims);
    if (!t || !d)
        return NULL;
    onnx__tensor_proto__init(t);
    t->n_dims = (size_t)n_dims;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = (int32_t)type;
    t->name = copy_str(g, name);
    *count = 1;
    for (int i = 0; i < n_dims; i++)
        *count *= (size_t)dims[i];
    if (!t->name || list_push(&g->initializers, t) != PST_OK || remember_name(g, name) != PST_OK) {
        fail(g, PST_ENOMEM);
        return NULL;
    }
    return t;
}

int pst_onnx_graph_floats(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                          const float *values)
{
    size_t n;
    Onnx__TensorProto *t = tensor(g, name, PST_ONNX_FLOAT, n_dims, dims, &n);
    if (!t || !(t->float_data = copy(g, values, n * sizeof *values)))
        return PST_ENOMEM;
    t->n_float_data = n;
    return PST_OK;
}

int pst_onnx_graph_int64s(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                          const int64_t *values)
{
    size_t n;
    Onnx__TensorProto *t = tensor(g, name, PST_ONNX_INT64, n_dims, dims, &n);
    if (!t || !(t->int64_data = copy(g, values, n * sizeof *values)))
        return PST_ENOMEM;
    t->n_int64_data = n;
    return PST_OK;
}

int pst_onnx_graph_doubles(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                           const double *values)
{
    size_t n;
    Onnx__TensorProto *t = tensor(g, name, PST_ONNX_DOUBLE, n_dims, dims, &n);
    if (!t || !(t->double_data = copy(g, values, n * sizeof *values)))
        return PST_ENOMEM;
    t->n_double_data = n;
    return PST_OK;
}

/* Strings as protobuf bytes (ONNX strings are UTF-8 without a terminator). */
static ProtobufCBinaryData *binaries(pst_onnx_graph_t *g, size_t n, const char *const *values)
{
    ProtobufCBinaryData *b = alloc(g, n * sizeof *b);
    for (size_t i = 0; b && i < n; i++) {
        b[i].len = strlen(values[i]);
        if (!(b[i].data = copy(g, values[i], b[i].len)))
            return NULL;
    }
    return b;
}

int pst_onnx_graph_strings(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                           const char *const *values)
{
    size_t n;
    Onnx__TensorProto *t = tensor(g, name, PST_ONNX_STRING, n_dims, dims, &n);
    if (!t || !(t->string_data = binaries(g, n, values)))
        return PST_ENOMEM;
    t->n_string_data = n;
    return PST_OK;
}

static char **copy_names(pst_onnx_graph_t *g, int n, const char *const *names)
{
    char **out = alloc(g, (size_t)n * sizeof *out);
    for (int i = 0; out && i < n; i++)
        if (!(out[i] = copy_str(g, names[i])))
            return NULL;
    return out;
}

pst_onnx_node_t *pst_onnx_graph_node(pst_onnx_graph_t *g, const char *op_type, const char *domain,
                                     int n_inputs, const char *const *inputs, int n_outputs,
                                     const char *const *outputs)
{
    pst_onnx_node_t *node = alloc(g, sizeof *node);
    if (!node)
        return NULL;
    Onnx__NodeProto *p = &node->proto;
    onnx__node_proto__init(p);
    p->op_type = copy_str(g, op_type);
    p->domain = copy_str(g, domain);
    p->name = copy_str(g, outputs[0]);
    p->input = copy_names(g, n_inputs, inputs);
    p->output = copy_names(g, n_outputs, outputs);
    p->attribute = alloc(g, MAX_ATTRS * sizeof *p->attribute);
    if (!p->op_type || !p->name || !p->input || !p->output || !p->attribute ||
        list_push(&g->nodes, p) != PST_OK) {
        fail(g, PST_ENOMEM);
        return NULL;
    }
    p->n_input = (size_t)n_inputs;
    p->n_output = (size_t)n_outputs;
    for (int i = 0; i < n_outputs; i++)
        if (remember_name(g, outputs[i]) != PST_OK)
            return NULL;
    return node;
}

pst_onnx_node_t *pst_onnx_graph_op(pst_onnx_graph_t *g, const char *op_type, const char *output,
                                   const char *const *inputs)
{
    int n = 0;
    while (inputs[n])
        n++;
    return pst_onnx_graph_node(g, op_type, NULL, n, inputs, 1, &output);
}

/* A new attribute of node, or NULL (a NULL node is an earlier failure, already recorded). */
static Onnx__AttributeProto *attribute(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name,
                                       Onnx__AttributeProto__AttributeType type)
{
    if (!node)
        return NULL;
    Onnx__AttributeProto *a = alloc(g, sizeof *a);
    if (!a)
        return NULL;
    if (node->proto.n_attribute == MAX_ATTRS) {
        /* More attributes than any exporter sets: our bug, reported as an argument error. */
        fail(g, PST_EINVAL);
        return NULL;
    }
    onnx__attribute_proto__init(a);
    a->name = copy_str(g, name);
    a->has_type = 1;
    a->type = type;
    node->proto.attribute[node->proto.n_attribute++] = a;
    return a->name ? a : NULL;
}

int pst_onnx_attr_int(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, int64_t value)
{
    Onnx__AttributeProto *a = attribute(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a)
        return fail(g, PST_ENOMEM);
    a->has_i = 1;
    a->i = value;
    return PST_OK;
}

int pst_onnx_attr_float(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, float value)
{
    Onnx__AttributeProto *a =
        attribute(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a)
        return fail(g, PST_ENOMEM);
    a->has_f = 1;
    a->f = value;
    return PST_OK;
}

int pst_onnx_attr_ints(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, size_t n,
                       const int64_t *values)
{
    Onnx__AttributeProto *a = attribute(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (!a || !(a->ints = copy(g, values, n * sizeof *values)))
        return fail(g, PST_ENOMEM);
    a->n_ints = n;
    return PST_OK;
}

int pst_onnx_attr_floats(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, size_t n,
                         const float *values)
{
    Onnx__AttributeProto *a =
        attribute(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    if (!a || !(a->floats = copy(g, values, n * sizeof *values)))
        return fail(g, PST_ENOMEM);
    a->n_floats = n;
    return PST_OK;
}

int pst_onnx_attr_strings(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, size_t n,
                          const char *const *values)
{
    Onnx__AttributeProto *a =
        attribute(g, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    if (!a || !(a->strings = binaries(g, n, values)))
        return fail(g, PST_ENOMEM);
    a->n_strings = n;
    return PST_OK;
}

static bool name_taken(const pst_onnx_graph_t *g, const char *name)
{
    for (size_t i = 0; i < g->names.n; i++)
        if (strcmp(g->names.items[i], name) == 0)
            return true;
    return false;
}

const char *pst_onnx_graph_unique(pst_onnx_graph_t *g, const char *prefix)
{
    size_t size = strlen(prefix) + 24;
    char *name = alloc(g, size);
    if (!name)
        return "";
    snprintf(name, size, "%s", prefix);
    for (int k = 2; name_taken(g, name); k++)
        snprintf(name, size, "%s_%d", prefix, k);
    return name;
}

int pst_onnx_graph_pack(pst_onnx_graph_t *g, uint8_t **buf, size_t *len, pst_err_t *err)
{
    *buf = NULL;
    *len = 0;
    if (g->failure != PST_OK)
        return pst_err_set(err, g->failure, "building the ONNX graph: %s",
                           pst_strerror(g->failure));
    g->model.n_opset_import = g->opsets.n;
    g->model.opset_import = (Onnx__OperatorSetIdProto **)g->opsets.items;
    g->model.n_metadata_props = g->metadata.n;
    g->model.metadata_props = (Onnx__StringStringEntryProto **)g->metadata.items;
    g->graph.n_node = g->nodes.n;
    g->graph.node = (Onnx__NodeProto **)g->nodes.items;
    g->graph.n_initializer = g->initializers.n;
    g->graph.initializer = (Onnx__TensorProto **)g->initializers.items;
    g->graph.n_input = g->inputs.n;
    g->graph.input = (Onnx__ValueInfoProto **)g->inputs.items;
    g->graph.n_output = g->outputs.n;
    g->graph.output = (Onnx__ValueInfoProto **)g->outputs.items;
    size_t size = onnx__model_proto__get_packed_size(&g->model);
    if (!(*buf = malloc(size ? size : 1)))
        return pst_err_set(err, PST_ENOMEM, "out of memory");
    *len = onnx__model_proto__pack(&g->model, *buf);
    return PST_OK;
}
