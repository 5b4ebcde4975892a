/* ONNX graph builder: nodes, initializers, inputs and outputs of one ModelProto (the messages
 * protoc-c generates from the system's onnx.proto), packed into the bytes of a .onnx file. */
#ifndef PST_COMMON_ONNX_ONNXGRAPH_H
#define PST_COMMON_ONNX_ONNXGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* The opsets the exporters target: ai.onnx 13 (IR version 7) and ai.onnx.ml 2, read by the onnx
 * checker of Debian's python3-onnx (1.12) and by onnxruntime. */
#define PST_ONNX_IR_VERSION 7
#define PST_ONNX_OPSET 13
#define PST_ONNX_ML_DOMAIN "ai.onnx.ml"
#define PST_ONNX_ML_OPSET 2

/* Element types, the values of onnx.TensorProto.DataType. */
typedef enum {
    PST_ONNX_FLOAT = 1,
    PST_ONNX_INT64 = 7,
    PST_ONNX_STRING = 8,
    PST_ONNX_BOOL = 9,
    PST_ONNX_DOUBLE = 11,
} pst_onnx_type_t;

/* A dimension of PST_ONNX_BATCH in an input or output shape is the symbolic batch size "N". */
#define PST_ONNX_BATCH (-1)

typedef struct pst_onnx_graph pst_onnx_graph_t;
typedef struct pst_onnx_node pst_onnx_node_t;

/* An empty model whose graph is called name, importing ai.onnx at PST_ONNX_OPSET. Caller owns. */
pst_onnx_graph_t *pst_onnx_graph_new(const char *name, pst_err_t *err);
void pst_onnx_graph_destroy(pst_onnx_graph_t **self_p);

/* Every function below returns PST_OK or PST_ENOMEM (NULL for node). The first failure is also
 * kept: pst_onnx_graph_pack reports it, so a sequence of calls may be checked once at its end.
 * Names and data are copied; the graph holds no pointer into the caller's memory. */

/* Imports domain at version (once per domain; a second call for it updates the version). */
int pst_onnx_graph_opset(pst_onnx_graph_t *g, const char *domain, int64_t version);
/* The model's producer, its doc string and a metadata entry (key: value). */
int pst_onnx_graph_describe(pst_onnx_graph_t *g, const char *producer, const char *version,
                            const char *doc);
int pst_onnx_graph_metadata(pst_onnx_graph_t *g, const char *key, const char *value);

/* A graph input or output: a tensor of type with n_dims dims (PST_ONNX_BATCH: "N"), documented. */
int pst_onnx_graph_input(pst_onnx_graph_t *g, const char *name, pst_onnx_type_t type, int n_dims,
                         const int64_t *dims, const char *doc);
int pst_onnx_graph_output(pst_onnx_graph_t *g, const char *name, pst_onnx_type_t type, int n_dims,
                          const int64_t *dims, const char *doc);

/* Constant tensors (initializers) of n_dims dims holding prod(dims) values. */
int pst_onnx_graph_floats(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                          const float *values);
int pst_onnx_graph_int64s(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                          const int64_t *values);
int pst_onnx_graph_doubles(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                           const double *values);
int pst_onnx_graph_strings(pst_onnx_graph_t *g, const char *name, int n_dims, const int64_t *dims,
                           const char *const *values);

/* Appends a node op_type (domain NULL: ai.onnx) reading inputs and writing outputs, named after
 * its first output. Nodes must be added in an order where each input already exists. */
pst_onnx_node_t *pst_onnx_graph_node(pst_onnx_graph_t *g, const char *op_type, const char *domain,
                                     int n_inputs, const char *const *inputs, int n_outputs,
                                     const char *const *outputs);
/* Shorthand for the common one-output node: inputs is a NULL-terminated list. */
pst_onnx_node_t *pst_onnx_graph_op(pst_onnx_graph_t *g, const char *op_type, const char *output,
                                   const char *const *inputs);

/* Attributes of a node. */
int pst_onnx_attr_int(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, int64_t value);
int pst_onnx_attr_float(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, float value);
int pst_onnx_attr_ints(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, size_t n,
                       const int64_t *values);
int pst_onnx_attr_floats(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, size_t n,
                         const float *values);
int pst_onnx_attr_strings(pst_onnx_graph_t *g, pst_onnx_node_t *node, const char *name, size_t n,
                          const char *const *values);

/* A name no other tensor of g has: prefix, or prefix_2, prefix_3... Owned by g. */
const char *pst_onnx_graph_unique(pst_onnx_graph_t *g, const char *prefix);

/* The serialised onnx.ModelProto in *buf (caller frees), or the first failure of the calls. */
int pst_onnx_graph_pack(pst_onnx_graph_t *g, uint8_t **buf, size_t *len, pst_err_t *err);

#endif
