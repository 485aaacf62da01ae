// A rule as the builder holds it: groups (all / any) of items, each a condition row or a nested
// group, either of them negated. Rows keep what an operator types (yuan, comma-separated lists,
// percentages); they become the rule language's nodes on the way out, and back on the way in.
// A node the builder cannot show (several property tests, a platform filter…) makes the editor
// fall back to JSON, never to a guess.

export type Rule = Record<string, unknown>

export interface Row {
  type: string
  key?: string
  value_type?: string
  op?: string
  value?: string
  values?: string[]
  tag_id?: string
  segment_id?: string
  event?: string
  count?: number
  days?: number | null
  measure?: string
  field?: string
  score?: string
  channel?: string
  seed?: string
  from?: number
  to?: number
  prop_key?: string
  prop_op?: string
  prop_value?: string
}

export interface Item {
  not: boolean
  row?: Row
  group?: Group
}

export interface Group {
  mode: 'and' | 'or'
  items: Item[]
}

export const MAX_DEPTH = 4
// Tags are worked out before segments, so a tag's rule cannot ask about one.
export const TAG_LEAVES = ['trait', 'rfm_group', 'rfm_score', 'lifecycle', 'tag', 'event', 'orders', 'bought', 'reachable', 'community_group', 'bucket']
export const SEGMENT_LEAVES = [...TAG_LEAVES.slice(0, 10), 'segment', 'bucket']
export const NO_VALUE = ['exists', 'not_exists', 'is_true', 'is_false']
const split = (text: string | undefined) => (text ?? '').split(/[,，]/).map((v) => v.trim()).filter(Boolean)
const windowOf = (days: number | null | undefined) => (days ? { window: { days } } : {})
const number = (text: string) => (text.trim() !== '' && !Number.isNaN(Number(text)) ? Number(text) : text)

export function rowToNode(r: Row): Rule {
  switch (r.type) {
    case 'trait': {
      const node: Rule = { type: 'trait', key: r.key ?? '', value_type: r.value_type ?? 'string', op: r.op ?? 'eq' }
      if (NO_VALUE.includes(r.op ?? '')) return node
      const text = r.value ?? ''
      if (['in', 'not_in', 'includes', 'excludes'].includes(r.op ?? '')) node.value = split(text)
      else if (r.op === 'between') node.value = split(text).map((v) => (r.value_type === 'number' ? Number(v) : v))
      else if (r.value_type === 'number' || ['within_last_days', 'more_than_days_ago'].includes(r.op ?? '')) node.value = Number(text)
      else node.value = text
      return node
    }
    case 'rfm_group':
      return { type: 'rfm_group', groups: r.values ?? [] }
    case 'rfm_score':
      return { type: 'rfm_score', score: r.score ?? 'r', op: r.op ?? 'gte', value: r.count ?? 4 }
    case 'lifecycle':
      return { type: 'lifecycle', stages: r.values ?? [] }
    case 'tag':
      return { type: 'tag', tag_id: r.tag_id ?? '' }
    case 'event': {
      const node: Rule = { type: 'event', event: r.event ?? '', op: r.op ?? 'gte', count: r.count ?? 1, ...windowOf(r.days) }
      if (r.prop_key) {
        const test: Rule = { key: r.prop_key, op: r.prop_op ?? 'eq' }
        if (test.op === 'in' || test.op === 'not_in') test.value = split(r.prop_value)
        else if (['gt', 'gte', 'lt', 'lte'].includes(String(test.op))) test.value = Number(r.prop_value)
        else if (test.op !== 'exists') test.value = number(r.prop_value ?? '')
        node.where = [test]
      }
      return node
    }
    case 'orders': {
      const money = r.measure !== 'count'
      return { type: 'orders', measure: r.measure ?? 'count', op: r.op ?? 'gte', value: Math.round((r.count ?? 0) * (money ? 100 : 1)), ...windowOf(r.days) }
    }
    case 'reachable':
      return r.channel === 'ads' ? { type: 'reachable', channel: 'ads', purpose: 'audience_upload' } : { type: 'reachable', channel: r.channel ?? 'sms' }
    case 'community_group':
      return { type: 'community_group', groups: r.values ?? [] }
    case 'segment':
      return { type: 'segment', segment_id: r.segment_id ?? '' }
    case 'bucket':
      return { type: 'bucket', seed: r.seed ?? '', from: Math.round((r.from ?? 0) * 100), to: Math.round((r.to ?? 10) * 100) }
    default:
      return { type: 'bought', field: r.field ?? 'category', values: split(r.value), ...windowOf(r.days) }
  }
}

export function nodeToRow(n: Rule): Row | null {
  const days = ((n.window as Rule | undefined)?.days as number | undefined) ?? null
  if (n.window && days === null) return null
  switch (n.type) {
    case 'trait': {
      const v = n.value
      return { type: 'trait', key: n.key as string, value_type: n.value_type as string, op: n.op as string, value: Array.isArray(v) ? v.join(',') : v == null ? '' : String(v) }
    }
    case 'rfm_group':
      return { type: 'rfm_group', values: n.groups as string[] }
    case 'rfm_score':
      return { type: 'rfm_score', score: n.score as string, op: n.op as string, count: n.value as number }
    case 'lifecycle':
      return { type: 'lifecycle', values: n.stages as string[] }
    case 'tag':
      return n.values ? null : { type: 'tag', tag_id: n.tag_id as string }
    case 'event': {
      const where = (n.where as Rule[] | undefined) ?? []
      if (where.length > 1) return null
      const row: Row = { type: 'event', event: n.event as string, op: (n.op as string) ?? 'gte', count: (n.count as number) ?? 1, days }
      if (where.length) {
        const v = where[0].value
        Object.assign(row, { prop_key: where[0].key as string, prop_op: where[0].op as string, prop_value: Array.isArray(v) ? v.join(',') : v == null ? '' : String(v) })
      }
      return row
    }
    case 'orders':
      if (n.platform || n.store) return null
      return { type: 'orders', measure: (n.measure as string) ?? 'count', op: (n.op as string) ?? 'gte', count: (n.value as number) / (n.measure && n.measure !== 'count' ? 100 : 1), days }
    case 'bought':
      return { type: 'bought', field: n.field as string, value: (n.values as string[]).join(','), days }
    case 'reachable':
      return { type: 'reachable', channel: n.channel as string }
    case 'community_group':
      return { type: 'community_group', values: n.groups as string[] }
    case 'segment':
      return { type: 'segment', segment_id: n.segment_id as string }
    case 'bucket':
      return { type: 'bucket', seed: n.seed as string, from: (n.from as number) / 100, to: (n.to as number) / 100 }
  }
  return null
}

function itemOf(node: Rule, depth: number): Item | null {
  let not = false
  let inner = node
  if (node.type === 'not') {
    not = true
    inner = node.condition as Rule
  }
  if (inner.type === 'and' || inner.type === 'or') {
    const group = ruleToGroup(inner, depth + 1)
    return group ? { not, group } : null
  }
  const row = nodeToRow(inner)
  return row ? { not, row } : null
}

/** The builder's form of a rule, or null when the builder cannot show it (then: JSON). */
export function ruleToGroup(rule: Rule, depth = 1): Group | null {
  if (depth > MAX_DEPTH) return null
  if (rule.type !== 'and' && rule.type !== 'or') {
    const item = itemOf(rule, depth)
    return item ? { mode: 'and', items: [item] } : null
  }
  const items = (rule.conditions as Rule[]).map((c) => itemOf(c, depth))
  if (items.some((i) => i === null)) return null
  return { mode: rule.type as 'and' | 'or', items: items as Item[] }
}

export function groupToRule(group: Group): Rule {
  return {
    type: group.mode,
    conditions: group.items.map((item) => {
      const node = item.group ? groupToRule(item.group) : rowToNode(item.row as Row)
      return item.not ? { type: 'not', condition: node } : node
    }),
  }
}
