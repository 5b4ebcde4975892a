// Runs an ONNX model in onnxruntime-node: node onnx_run.js MODULE MODEL IN OUT.
// IN is JSON: a list of inputs {"name", "type" ("float32" or "string"), "dims", "data"} (null for
// a float NaN). OUT receives every output of the model as JSON {name: {"dims", "type", "data"}}
// (int64 values as numbers, strings as strings). Used by onnx_export_test.sh and
// tests/unit/onnxgraph_test.c.
const [moduleDir, modelPath, inPath, outPath] = process.argv.slice(2);
const ort = require(moduleDir);
const fs = require('fs');

function tensor(input) {
  if (input.type === 'string') return new ort.Tensor('string', input.data, input.dims);
  const data = Float32Array.from(input.data, (v) => (v === null ? NaN : v));
  return new ort.Tensor('float32', data, input.dims);
}

(async () => {
  const feeds = {};
  for (const input of JSON.parse(fs.readFileSync(inPath, 'utf8'))) feeds[input.name] = tensor(input);
  const session = await ort.InferenceSession.create(modelPath);
  const results = await session.run(feeds);
  const out = {};
  for (const name of session.outputNames) {
    const t = results[name];
    const value = t.type === 'string' ? (v) => v : (v) => Number(v);
    out[name] = {dims: t.dims, type: t.type, data: Array.from(t.data, value)};
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
})().catch((e) => {
  console.error(`onnx_run: ${e.message}`);
  process.exit(1);
});
