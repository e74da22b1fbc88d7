// The official JS SDK's module-level run(), unmodified: the key from WAVESPEED_API_KEY (read when the SDK loads),
// the base URL from its config. Usage: WAVESPEED_API_KEY=... node run_module.cjs BASE_URL MODEL
// Prints one JSON object: polling, sync and base64 results (or the exception class each raised).
const sdk = require("wavespeed");
const { api } = require("wavespeed/dist/config");

const [baseUrl, model] = process.argv.slice(2);
api.baseUrl = baseUrl;

async function attempt(call) {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error: String(error && error.constructor && error.constructor.name), message: String(error.message) };
  }
}

(async () => {
  const result = {};
  result.polling = await attempt(() => sdk.run(model, { prompt: "js module polling", size: "640*480" }, { pollInterval: 0.01 }));
  result.sync = await attempt(() => sdk.run(model, { prompt: "js module sync" }, { enableSyncMode: true }));
  result.base64 = await attempt(() => sdk.run(model, { prompt: "js module base64", enable_base64_output: true }, { enableSyncMode: true }));
  process.stdout.write(JSON.stringify(result));
})();
