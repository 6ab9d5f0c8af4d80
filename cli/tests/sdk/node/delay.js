// Delayed messages with the official Node.js SDK (npm
// `rocketmq-client-nodejs`): send N messages with delivery times 3-5 s
// ahead, receive them with its SimpleConsumer, and exit 0 only if each
// arrived exactly once, not before its delivery time, at most PRECISION_MS
// (plus 2 s of slack for a loaded machine) after it, and with the delivery
// time it was sent with.
// Arguments: ENDPOINT TOPIC GROUP N PRECISION_MS.
'use strict';

const { clientOptions, startProducer, startConsumer } = require('./common');

async function main() {
  const [endpoint, topic, group, nArg, precisionArg] = process.argv.slice(2);
  const n = Number.parseInt(nArg, 10);
  const precision = Number.parseInt(precisionArg, 10);
  if (!endpoint || !topic || !group || !(n > 0) || !(precision > 0)) {
    throw new Error('usage: delay.js ENDPOINT TOPIC GROUP N PRECISION_MS');
  }
  const common = clientOptions(endpoint);

  const producer = await startProducer(common, topic);
  const due = new Map();
  for (let i = 0; i < n; i++) {
    const at = Date.now() + 3000 + (i % 3) * 1000;
    const body = `${i}:${at}`;
    await producer.send({ topic, tag: 'later', body: Buffer.from(body), deliveryTimestamp: new Date(at) });
    due.set(body, at);
  }
  await producer.shutdown();
  console.log(`sent ${due.size}`);

  const consumer = await startConsumer(common, group, topic);
  const got = new Map();
  let wrong = 0;
  const deadline = Date.now() + 60_000;
  while (got.size < n && Date.now() < deadline) {
    const messages = await consumer.receive(32, 20_000);
    const now = Date.now();
    for (const message of messages) {
      const body = message.body.toString();
      const at = due.get(body);
      got.set(body, (got.get(body) ?? 0) + 1);
      if (at === undefined || now < at || now > at + precision + 2000
          || message.deliveryTimestamp?.getTime() !== at) {
        wrong += 1;
        console.error(`${body}: due ${at}, received ${now}, delivery timestamp ${message.deliveryTimestamp?.getTime()}`);
      }
      await consumer.ack(message);
    }
  }
  await consumer.shutdown();
  const duplicates = [...got.values()].filter((count) => count > 1).length;
  const missing = [...due.keys()].filter((body) => !got.has(body)).length;
  console.log(`received ${got.size} duplicates ${duplicates} missing ${missing} wrong ${wrong}`);
  return missing === 0 && duplicates === 0 && wrong === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
