export default {
  app: { name: 'siyu', tagline: 'Customer data platform and marketing automation' },
  nav: { dashboard: 'Dashboard', imports: 'Imports', orders: 'Orders', profiles: 'Profiles', events: 'Events', members: 'Members', keys: 'API keys', audit: 'Audit log', jobs: 'Jobs', identity: 'Identity graph' },
  login: {
    title: 'Sign in to siyu', email: 'Email', password: 'Password', submit: 'Sign in',
    required: 'Enter your email and password',
  },
  header: { workspace: 'Workspace', logout: 'Sign out', language: '中文' },
  dashboard: {
    title: 'Dashboard', profiles: 'Profiles', orders: 'Orders', events: 'Events',
    trend: 'Last 30 days', trendOrders: 'Orders', trendPaid: 'Paid (yuan)', trendEvents: 'Events',
    timezone: 'Time zone',
  },
  members: { title: 'Members', email: 'Email', name: 'Name', role: 'Role', add: 'Add member', remove: 'Remove', save: 'Save' },
  keys: {
    title: 'API keys', name: 'Name', scope: 'Scope', prefix: 'Prefix', created: 'Created',
    lastUsed: 'Last used', status: 'Status', create: 'Create key', revoke: 'Revoke', revoked: 'Revoked',
    active: 'Active', ingest: 'Ingest only', full: 'Full API', tokenOnce: 'Copy it now; it is shown only once:',
  },
  events: {
    title: 'Events', setup: 'Sending events', writeKey: 'write key',
    setupHint: 'Segment-compatible HTTP API: create an ingest-only key on the API keys page and use it as the Basic auth username; official Segment SDKs work when pointed at this site.',
    type: 'Type', name: 'Name', person: 'User id', time: 'Time', search: 'Search', refresh: 'Refresh',
  },
  profiles: {
    title: 'Profiles', search: 'Find', searchHint: 'phone, email, user id, openid, Taobao nick…', name: 'Name', city: 'City',
    firstSeen: 'First seen', lastSeen: 'Last seen', identities: 'Identities', traits: 'Traits', merges: 'Merge history',
    timeline: 'Events and orders', kind: 'Kind', value: 'Value', scope: 'Scope', split: 'Split selected', splitConfirm: 'These identifiers are not this person? They will not be joined again.', splitDone: 'Split into {n} new profile(s)', merge: 'Merge', mergeHint: 'another profile id', consents: 'Consent', noConsent: 'No consent on record: not reachable for marketing', channel: 'Channel', purpose: 'Purpose', status: 'Status', granted: 'Granted', withdrawn: 'Withdrawn', source: 'Source', at: 'At', masked: 'Personal data masked',
  },
  orders: {
    title: 'Orders', platform: 'Platform', status: 'Status', store: 'Store', orderNo: 'Order no.', total: 'Amount', receiver: 'Receiver',
    orderedAt: 'Ordered', buyer: 'Buyer', openProfile: 'Open profile', quantity: 'Qty', timeline: 'Status timeline',
    s: { unpaid: 'Unpaid', paid: 'Paid', shipped: 'Shipped', completed: 'Completed', refunded: 'Refunded', cancelled: 'Cancelled' },
  },
  imports: {
    title: 'Imports', preset: 'Format', file: 'File', upload: 'Upload and import', status: 'Status', rows: 'Rows',
    accepted: 'Accepted', rejected: 'Rejected (download)', created: 'Uploaded', error: 'Error',
    hint: 'CSV (UTF-8 or GBK), XLSX, JSONL or Parquet; re-importing a file adds nothing twice; every rejected row comes with its reason.',
    s: { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed' },
  },
  audit: { title: 'Audit log', at: 'Time', actor: 'Actor', action: 'Action', target: 'Target', more: 'Load more' },
  jobs: {
    title: 'Jobs', task: 'Task', status: 'Status', runAt: 'Run at', attempts: 'Attempts',
    error: 'Last error', retry: 'Retry', cancel: 'Cancel', all: 'All',
  },
  identity: {
    title: 'Identity graph', rebuild: 'Rebuild now', queued: 'Queued; running in the background',
    explain: 'A full rebuild recomputes how every identifier (phones, unionids, openids, marketplace buyer ids…) links up, all at once, and compares the result with the people built incrementally; people that differ are repaired under the current rules (merged or split), and the repairs are audited.',
    requestedAt: 'Requested', status: 'Status', identifiers: 'Identifiers', links: 'Links', people: 'People',
    shared: 'Shared values', conflicts: 'Conflicts', repaired: 'Repaired', duration: 'Duration', error: 'Error',
    statuses: { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed' },
  },
  roles: { owner: 'Owner', admin: 'Admin', operator: 'Operator', analyst: 'Analyst', viewer: 'Viewer' },
  common: { confirm: 'OK', cancel: 'Cancel', none: 'No data', forbidden: 'Your role cannot see this page' },
}
