// Send N messages with the official Node.js producer (npm
// `rocketmq-client-nodejs`), then receive and ack them with its
// SimpleConsumer; exit 0 only if every message arrived exactly once, with
// the tag and key it was sent with.
// Arguments: ENDPOINT TOPIC GROUP N.
'use strict';

const { clientOptions, startProducer, startConsumer } = require('./common');

// The SDK logs to ~/logs/rocketmq by default; keep its output on stderr.
async function main() {
  const [endpoint, topic, group, nArg] = process.argv.slice(2);
  const n = Number.parseInt(nArg, 10);
  if (!endpoint || !topic || !group || !(n > 0)) {
    throw new Error('usage: simple.js ENDPOINT TOPIC GROUP N');
  }
  const common = clientOptions(endpoint);

  const producer = await startProducer(common, topic);
  const sent = new Set();
  for (let i = 0; i < n; i++) {
    const body = `node-${i}`;
    const receipt = await producer.send({
      topic,
      tag: 'TagA',
      keys: [`key-${i}`],
      body: Buffer.from(body),
    });
    if (!receipt.messageId) {
      throw new Error(`send ${i}: no message id in ${JSON.stringify(receipt)}`);
    }
    sent.add(body);
  }
  await producer.shutdown();
  console.log(`sent ${sent.size}`);

  const consumer = await startConsumer(common, group, topic, 'TagA');
  const got = new Map();
  let mangled = 0; // delivered without the tag or key it was sent with
  const deadline = Date.now() + 90_000;
  while (got.size < n && Date.now() < deadline) {
    const messages = await consumer.receive(32, 20_000);
    for (const message of messages) {
      const body = message.body.toString();
      got.set(body, (got.get(body) ?? 0) + 1);
      const key = `key-${body.slice('node-'.length)}`;
      if (message.tag !== 'TagA' || !message.keys.includes(key)) {
        mangled += 1;
        console.error(`${body}: tag ${message.tag}, keys ${message.keys}`);
      }
      await consumer.ack(message);
    }
  }
  await consumer.shutdown();

  const duplicates = [...got.values()].filter((count) => count > 1).length;
  const missing = [...sent].filter((body) => !got.has(body)).length;
  console.log(`received ${got.size} duplicates ${duplicates} missing ${missing}`);
  return missing === 0 && duplicates === 0 && mangled === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
