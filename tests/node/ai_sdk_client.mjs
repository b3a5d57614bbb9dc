// The Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`) against Hearth's
// OpenAI API: one scenario per run, one JSON line on stdout, exit 1 with the
// error on stderr when the SDK fails.
//
//   node ai_sdk_client.mjs <base_url> <scenario> [model]
//
// Scenarios: text, stream, tools, tools-named, tools-stream, tools-auto.

import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, streamText, tool } from "ai";
import { z } from "zod";

const [baseUrl, scenario, modelId = "gemma-3-270m-q4_k_m"] = process.argv.slice(2);
if (!baseUrl || !scenario) {
  console.error("usage: node ai_sdk_client.mjs <base_url> <scenario> [model]");
  process.exit(2);
}

// What the SDK put on the wire, so that the test knows which protocol it exercised.
const sent = [];
async function recordingFetch(url, init) {
  if (init?.body) {
    const body = JSON.parse(init.body);
    sent.push({
      url: String(url),
      stream: body.stream ?? false,
      stream_options: body.stream_options ?? null,
      tool_choice: body.tool_choice ?? null,
      tools: (body.tools ?? []).map((t) => t.function?.name),
    });
  }
  return fetch(url, init);
}

const hearth = createOpenAICompatible({
  name: "hearth",
  baseURL: `${baseUrl}/v1`,
  apiKey: "unused",
  includeUsage: true,
  fetch: recordingFetch,
});
const model = hearth.chatModel(modelId);

// No `execute`: the SDK returns the call instead of running it, so one step ends the run.
const tools = {
  get_weather: tool({
    description: "Get the current weather in a city",
    inputSchema: z.object({ city: z.string().describe("The city's name") }),
  }),
};
const weatherPrompt = "What is the weather in Paris? Use the get_weather tool.";
const common = { model, temperature: 0, maxRetries: 0 };

function usageOf(usage) {
  return { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: usage.totalTokens };
}

function callsOf(toolCalls) {
  return toolCalls.map((c) => ({
    toolCallId: c.toolCallId,
    toolName: c.toolName,
    input: c.input,
    invalid: c.invalid ?? false,
  }));
}

// streamText reports failures as stream parts rather than by throwing: read the
// whole stream, keep what the scenario needs, and throw the first error part.
async function drain(result) {
  const parts = { textDeltas: 0, toolInputStarts: [], toolInputDeltas: 0, toolInputEnds: 0, toolCalls: 0, types: [] };
  for await (const part of result.fullStream) {
    if (!parts.types.includes(part.type)) parts.types.push(part.type);
    if (part.type === "error") throw part.error instanceof Error ? part.error : new Error(JSON.stringify(part.error));
    if (part.type === "text-delta") parts.textDeltas += 1;
    if (part.type === "tool-input-start") parts.toolInputStarts.push(part.toolName);
    if (part.type === "tool-input-delta") parts.toolInputDeltas += 1;
    if (part.type === "tool-input-end") parts.toolInputEnds += 1;
    if (part.type === "tool-call") parts.toolCalls += 1;
  }
  return parts;
}

async function streamed(options) {
  const result = streamText({ ...common, ...options });
  const parts = await drain(result);
  return {
    text: await result.text,
    finishReason: await result.finishReason,
    usage: usageOf(await result.usage),
    toolCalls: callsOf(await result.toolCalls),
    parts,
  };
}

async function generated(options) {
  const result = await generateText({ ...common, ...options });
  return {
    text: result.text,
    finishReason: result.finishReason,
    usage: usageOf(result.usage),
    toolCalls: callsOf(result.toolCalls),
  };
}

const scenarios = {
  text: () => generated({ prompt: "Monday, Tuesday, Wednesday,", maxOutputTokens: 16 }),
  stream: async () => {
    const result = streamText({ ...common, prompt: "Monday, Tuesday, Wednesday,", maxOutputTokens: 16 });
    const chunks = [];
    for await (const chunk of result.textStream) chunks.push(chunk);
    // textStream skips error parts: the finish reason tells whether the stream failed.
    const finishReason = await result.finishReason;
    if (finishReason === "error") throw new Error("the stream ended with an error");
    return { text: chunks.join(""), chunks: chunks.length, finishReason, usage: usageOf(await result.usage) };
  },
  tools: () => generated({ prompt: weatherPrompt, tools, toolChoice: "required", maxOutputTokens: 64 }),
  "tools-stream": () => streamed({ prompt: weatherPrompt, tools, toolChoice: "required", maxOutputTokens: 64 }),
  "tools-named": () =>
    generated({
      prompt: weatherPrompt,
      tools,
      toolChoice: { type: "tool", toolName: "get_weather" },
      maxOutputTokens: 64,
    }),
  "tools-auto": () => generated({ prompt: weatherPrompt, tools, toolChoice: "auto", maxOutputTokens: 32 }),
};

const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${JSON.stringify(scenario)}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
try {
  const result = await run();
  console.log(JSON.stringify({ scenario, ...result, sent }));
} catch (error) {
  // APICallError carries Hearth's answer: show it, it is what a failing test needs.
  const { name, message, statusCode, responseBody } = error ?? {};
  console.error(JSON.stringify({ name, message, statusCode, responseBody }));
  process.exit(1);
}
