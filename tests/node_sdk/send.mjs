// Sends N events of every call type through @segment/analytics-node's normal batching,
// then prints one JSON line with how many the SDK reports delivered or failed.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, countArg] = process.argv.slice(2)
const count = Number(countArg)
const analytics = new Analytics({ writeKey, host, flushInterval: 200, maxRetries: 3 })
let delivered = 0
let failed = 0
analytics.on('http_request', () => {})
analytics.on('error', () => { failed += 1 })

const done = (err) => { if (err) failed += 1; else delivered += 1 }
for (let i = 0; i < count; i++) {
  const userId = `node-user-${i % 25}`
  switch (i % 6) {
    case 0: analytics.identify({ userId, traits: { email: `${userId}@example.com` } }, done); break
    case 1: analytics.track({ userId, event: 'Order Completed', properties: { order_id: `node-${i}`, revenue: i } }, done); break
    case 2: analytics.page({ anonymousId: `anon-${i}`, name: 'Home' }, done); break
    case 3: analytics.screen({ userId, name: 'Cart' }, done); break
    case 4: analytics.group({ userId, groupId: 'acme' }, done); break
    default: analytics.alias({ userId, previousId: `anon-${i}` }, done)
  }
}
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ delivered, failed }))
