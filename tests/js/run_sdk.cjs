// Drives the official WaveSpeed JS SDK, unmodified, against the fake. Usage: node run_sdk.cjs BASE_URL KEY IMAGE
// Prints one JSON object: what each call returned or which exception class it raised.
const sdk = require("wavespeed");

const { Client } = sdk;
// Compiled classes do not keep their names on .constructor, so name them through instanceof.
const EXCEPTIONS = ["WavespeedSyncTimeoutException", "WavespeedPredictionException", "WavespeedTimeoutException",
  "WavespeedSubmissionException", "WavespeedConnectionException", "WavespeedUnknownException", "WavespeedException"];
const errorClass = (error) => EXCEPTIONS.find((name) => sdk[name] && error instanceof sdk[name]) || "Error";

const [baseUrl, apiKey, imagePath] = process.argv.slice(2);
const client = new Client(apiKey, { baseUrl });
const T2I = "wavespeed-ai/flux-kontext-pro/text-to-image";
const EDIT = "wavespeed-ai/flux-kontext-max";

async function attempt(call) {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error: errorClass(error), message: String(error.message) };
  }
}

(async () => {
  const result = {};
  result.polling = await attempt(() => client.run(T2I, { prompt: "js polling", aspect_ratio: "3:2" }, { pollInterval: 0.01 }));
  result.sync = await attempt(() => client.run(T2I, { prompt: "js sync" }, { enableSyncMode: true }));
  result.upload = await attempt(() => client.upload(imagePath));
  if (result.upload.ok) {
    result.edit = await attempt(() => client.run(EDIT, { prompt: "js edit", image: result.upload.value }, { pollInterval: 0.01 }));
  }
  result.failure = await attempt(() => client.run(T2I, { prompt: "js must fail" }, { pollInterval: 0.01 }));
  result.syncTimeout = await attempt(() => client.run(T2I, { prompt: "js sync timeout" }, { enableSyncMode: true }));
  process.stdout.write(JSON.stringify(result));
})();
