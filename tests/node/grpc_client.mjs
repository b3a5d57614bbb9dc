// Lists the engine's models and streams one generation, printing one JSON
// object: { models: [...], text: "...", final: {...} }.
// Usage: node grpc_client.mjs ADDRESS MODEL PROMPT
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const [address, model, prompt] = process.argv.slice(2);
const protoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../proto");
const definition = protoLoader.loadSync("hearth/engine/v1/engine.proto", {
  includeDirs: [protoRoot],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
});
const { Engine } = grpc.loadPackageDefinition(definition).hearth.engine.v1;
const client = new Engine(address, grpc.credentials.createInsecure());

function listModels() {
  return new Promise((resolve, reject) =>
    client.ListModels({}, { deadline: Date.now() + 30000 }, (err, reply) => (err ? reject(err) : resolve(reply.models))),
  );
}

function generate() {
  return new Promise((resolve, reject) => {
    const pieces = [];
    let final = null;
    const call = client.Generate({ model, prompt, max_tokens: 8, temperature: 0 });
    call.on("data", (message) => {
      pieces.push(message.text);
      // The stream's last message carries the usage of the whole request.
      if (message.usage) final = message;
    });
    call.on("error", reject);
    call.on("end", () => resolve({ text: pieces.join(""), pieces: pieces.length, final }));
  });
}

try {
  const models = await listModels();
  const result = await generate();
  console.log(JSON.stringify({ models: models.map((m) => ({ id: m.id, state: m.state })), ...result }));
  client.close();
} catch (err) {
  console.error(`grpc error: ${err.code} ${err.details}`);
  process.exit(1);
}
