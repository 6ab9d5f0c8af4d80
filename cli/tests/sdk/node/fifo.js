// FIFO order per message group with the official Node.js SDK (npm
// `rocketmq-client-nodejs`).
// Arguments: ENDPOINT TOPIC GROUP GROUPS PER_GROUP.
//
// 1. The producer sends PER_GROUP messages to each of GROUPS message groups
//    (body "<group>:<seq>"), one send per group in flight at a time, so each
//    group's send order is its sequence order.
// 2. Two SimpleConsumers of the FIFO consumer group GROUP receive
//    concurrently and leave about 5% of the messages unacknowledged the first
//    time they see them (they come back after the invisibility). Checked for
//    every received message: it is the first not yet acknowledged message of
//    its group. At the end each group's acknowledged sequence must be exactly
//    0..PER_GROUP-1, and a last receive must get nothing.
// Prints "fifo ok <bool> ..." and exits 0 only if all of that holds.
'use strict';

const { clientOptions, startProducer, startConsumer } = require('./common');

const INVISIBLE_MS = 3000; // how long a received message stays invisible
const DEADLINE_MS = 40_000; // for the whole consumption

// Whether the consumers leave (group, seq) unacknowledged the first time.
function retried(g, seq) {
  return (g * 131 + seq * 17) % 20 === 0;
}

async function sendGroups(common, topic, groups, perGroup) {
  const producer = await startProducer(common, topic);
  const started = Date.now();
  for (let seq = 0; seq < perGroup; seq++) {
    const receipts = await Promise.all(Array.from({ length: groups }, (_, g) => producer.send({
      topic,
      tag: 'fifo',
      keys: [`${g}-${seq}`],
      messageGroup: `group-${g}`,
      body: Buffer.from(`${g}:${seq}`),
    })));
    if (receipts.some((r) => !r.messageId)) {
      throw new Error(`seq ${seq}: a send returned no message id`);
    }
  }
  await producer.shutdown();
  console.log(`sent ${groups * perGroup} in ${Date.now() - started} ms`);
}

// What the consumers saw, per message group. Each group's messages are
// handled one after another on a promise chain, from the check through the
// ack: a consumer that receives the next message of a group checks it only
// after the previous one's ack was recorded.
class Checker {
  constructor(groups, perGroup) {
    this.perGroup = perGroup;
    this.chains = Array.from({ length: groups }, () => Promise.resolve());
    this.expected = new Array(groups).fill(0);
    this.acked = Array.from({ length: groups }, () => []);
    this.violations = [];
    this.received = 0;
    this.redelivered = 0;
    this.leftUnacked = 0;
  }

  done() {
    return this.expected.every((e) => e >= this.perGroup);
  }

  // Queues the handling of `message` behind earlier messages of its group.
  handle(consumer, message) {
    const [g, seq] = message.body.toString().split(':').map(Number);
    const chain = this.chains[g].then(() => this.#check(consumer, message, g, seq));
    this.chains[g] = chain;
    return chain;
  }

  async #check(consumer, message, g, seq) {
    this.received += 1;
    const attempt = message.deliveryAttempt;
    if (attempt > 1) {
      this.redelivered += 1;
    }
    if (message.messageGroup !== `group-${g}`) {
      this.violations.push(`${g}:${seq} has group ${message.messageGroup}`);
    }
    if (seq !== this.expected[g]) {
      this.violations.push(`group ${g}: got ${seq} (attempt ${attempt}) while ${this.expected[g]} is not acked`);
      return;
    }
    if (attempt === 1 && retried(g, seq)) {
      this.leftUnacked += 1;
      return;
    }
    await consumer.ack(message);
    this.acked[g].push(seq);
    this.expected[g] = seq + 1;
  }
}

async function consume(common, topic, group, checker, errors) {
  const consumer = await startConsumer(common, group, topic);
  const deadline = Date.now() + DEADLINE_MS;
  try {
    while (!checker.done() && Date.now() < deadline) {
      const messages = await consumer.receive(32, INVISIBLE_MS);
      await Promise.all(messages.map((message) => checker.handle(consumer, message)));
    }
  } catch (err) {
    errors.push(String(err));
  } finally {
    await consumer.shutdown();
  }
}

async function main() {
  const [endpoint, topic, group, groupsArg, perGroupArg] = process.argv.slice(2);
  const groups = Number.parseInt(groupsArg, 10);
  const perGroup = Number.parseInt(perGroupArg, 10);
  if (!endpoint || !topic || !group || !(groups > 0) || !(perGroup > 0)) {
    throw new Error('usage: fifo.js ENDPOINT TOPIC GROUP GROUPS PER_GROUP');
  }
  const common = clientOptions(endpoint);
  await sendGroups(common, topic, groups, perGroup);

  const checker = new Checker(groups, perGroup);
  const errors = [];
  const started = Date.now();
  await Promise.all([0, 1].map(() => consume(common, topic, group, checker, errors)));
  const elapsed = Date.now() - started;

  // Nothing more may come: everything was acknowledged.
  const late = await startConsumer(common, group, topic);
  const extra = (await late.receive(32, INVISIBLE_MS)).map((message) => message.body.toString());
  await late.shutdown();

  const wrong = [];
  for (let g = 0; g < groups; g++) {
    const acked = checker.acked[g];
    if (acked.length !== perGroup || acked.some((seq, i) => seq !== i)) {
      wrong.push(g);
    }
  }
  let wantUnacked = 0;
  for (let g = 0; g < groups; g++) {
    for (let seq = 0; seq < perGroup; seq++) {
      wantUnacked += retried(g, seq) ? 1 : 0;
    }
  }
  const ok = checker.violations.length === 0 && wrong.length === 0 && errors.length === 0
    && extra.length === 0 && wantUnacked > 0 && checker.leftUnacked === wantUnacked
    && checker.redelivered >= wantUnacked;
  console.log(`consumed in ${elapsed} ms: received ${checker.received}, left unacked `
    + `${checker.leftUnacked} of ${wantUnacked}, redelivered ${checker.redelivered}, `
    + `violations ${checker.violations.length} ${JSON.stringify(checker.violations.slice(0, 5))}, `
    + `groups out of order or short ${JSON.stringify(wrong.slice(0, 5))}, `
    + `errors ${JSON.stringify(errors.slice(0, 3))}, extra ${JSON.stringify(extra.slice(0, 5))}`);
  console.log(`fifo ok ${ok}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
