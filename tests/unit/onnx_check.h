/* What the ONNX unit tests read back from a built graph: the packed model decoded again with the
 * protoc-c code of onnx.proto, an initializer or an attribute by name, the node types in order.
 * Include after cmocka.h. */
#ifndef PST_TESTS_UNIT_ONNX_CHECK_H
#define PST_TESTS_UNIT_ONNX_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "common/onnx/onnxgraph.h"
#include "onnx/onnx.pb-c.h"

/* Packs g and decodes it again; the caller frees with onnx__model_proto__free_unpacked. */
static inline Onnx__ModelProto *round_trip(pst_onnx_graph_t *g)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pst_err_t err = {0};
    assert_int_equal(pst_onnx_graph_pack(g, &buf, &len, &err), PST_OK);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(m);
    return m;
}

static inline const Onnx__TensorProto *initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    fail_msg("no initializer %s", name);
    return NULL;
}

static inline const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    fail_msg("node %s (%s) has no attribute %s", n->name, n->op_type, name);
    return NULL;
}

/* The op types of g's nodes joined by spaces. */
static inline void op_list(const Onnx__GraphProto *g, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < g->n_node; i++) {
        strncat(out, i ? " " : "", size - strlen(out) - 1);
        strncat(out, g->node[i]->op_type, size - strlen(out) - 1);
    }
}

#endif
