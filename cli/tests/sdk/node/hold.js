// A FIFO message group held back while its head is in flight, with the
// official Node.js SDK (npm `rocketmq-client-nodejs`).
// Arguments: ENDPOINT TOPIC GROUP N.
//
// Sends N messages in one message group, receives its head (seq 0) with a
// SimpleConsumer of the FIFO consumer group GROUP and, without acking it,
// checks that a second receive gets nothing (the rest is held), then prints
// "holding 0" and waits for a line on stdin (the caller looks at the group
// meanwhile). Then acks the head and receives and acks the rest, which must
// arrive in send order. Prints "hold ok <bool>" and exits 0 only if all of
// that holds.
'use strict';

const readline = require('node:readline');
const { clientOptions, startProducer, startConsumer } = require('./common');

// Resolves with the next line on stdin (or at its end).
function nextLine() {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin });
    rl.once('line', (line) => { rl.close(); resolve(line); });
    rl.once('close', () => resolve(''));
  });
}

async function main() {
  const [endpoint, topic, group, nArg] = process.argv.slice(2);
  const n = Number.parseInt(nArg, 10);
  if (!endpoint || !topic || !group || !(n > 1)) {
    throw new Error('usage: hold.js ENDPOINT TOPIC GROUP N');
  }
  const common = clientOptions(endpoint);
  const producer = await startProducer(common, topic);
  for (let seq = 0; seq < n; seq++) {
    await producer.send({ topic, messageGroup: 'held', body: Buffer.from(`h:${seq}`) });
  }
  await producer.shutdown();

  const consumer = await startConsumer(common, group, topic);
  const order = [];
  let head = [];
  const deadline = Date.now() + 30_000;
  while (head.length === 0 && Date.now() < deadline) {
    head = await consumer.receive(32, 60_000);
  }
  // The head is out for a minute: nothing else of its group may come.
  const during = await consumer.receive(32, 60_000);
  const headOk = head.length === 1 && head[0].body.toString() === 'h:0' && during.length === 0;
  console.log(`holding ${head.map((m) => m.body.toString())} then ${during.map((m) => m.body.toString())}`);
  await nextLine();

  for (const message of head) {
    order.push(message.body.toString());
    await consumer.ack(message);
  }
  while (order.length < n && Date.now() < deadline + 30_000) {
    for (const message of await consumer.receive(32, 10_000)) {
      order.push(message.body.toString());
      await consumer.ack(message);
    }
  }
  await consumer.shutdown();
  const inOrder = order.length === n && order.every((body, i) => body === `h:${i}`);
  console.log(`acked ${JSON.stringify(order)}`);
  console.log(`hold ok ${headOk && inOrder}`);
  return headOk && inOrder ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
