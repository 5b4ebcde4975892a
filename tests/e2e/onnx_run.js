// Runs an ONNX model in onnxruntime-node on one float input: node onnx_run.js MODULE MODEL IN OUT.
// IN is JSON {"name", "dims", "data"} (null for NaN); OUT receives every output of the model as
// JSON {name: {"dims", "type", "data"}} (int64 values as numbers).
const [moduleDir, modelPath, inPath, outPath] = process.argv.slice(2);
const ort = require(moduleDir);
const fs = require('fs');

(async () => {
  const input = JSON.parse(fs.readFileSync(inPath, 'utf8'));
  const data = Float32Array.from(input.data, (v) => (v === null ? NaN : v));
  const session = await ort.InferenceSession.create(modelPath);
  const feeds = {[input.name]: new ort.Tensor('float32', data, input.dims)};
  const results = await session.run(feeds);
  const out = {};
  for (const name of session.outputNames) {
    const t = results[name];
    out[name] = {dims: t.dims, type: t.type, data: Array.from(t.data, (v) => Number(v))};
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
})().catch((e) => {
  console.error(`onnx_run: ${e.message}`);
  process.exit(1);
});
