export default {
  app: { name: '私域', tagline: '客户数据平台与营销自动化' },
  nav: { dashboard: '概览', imports: '数据导入', orders: '订单', profiles: '客户档案', events: '事件流', members: '成员', keys: 'API 密钥', audit: '审计日志', jobs: '后台任务', identity: '身份图谱' },
  login: {
    title: '登录私域运营后台', email: '邮箱', password: '密码', submit: '登录',
    required: '请输入邮箱和密码',
  },
  header: { workspace: '工作空间', logout: '退出登录', language: 'English' },
  dashboard: {
    title: '概览', profiles: '客户档案', orders: '订单', events: '行为事件',
    trend: '近 30 天趋势', trendOrders: '订单数', trendPaid: '支付金额（元）', trendEvents: '事件数',
    timezone: '时区',
  },
  members: { title: '成员', email: '邮箱', name: '姓名', role: '角色', add: '添加成员', remove: '移除', save: '保存' },
  keys: {
    title: 'API 密钥', name: '名称', scope: '权限', prefix: '前缀', created: '创建时间',
    lastUsed: '最近使用', status: '状态', create: '创建密钥', revoke: '吊销', revoked: '已吊销',
    active: '有效', ingest: '仅写入事件', full: '完整 API', tokenOnce: '请立即保存，密钥只显示这一次：',
  },
  events: {
    title: '事件流', setup: '如何接入事件', writeKey: '写入密钥',
    setupHint: '兼容 Segment HTTP 接口：在「API 密钥」页创建「仅写入事件」密钥，把它作为 Basic 认证用户名，官方 Segment SDK 指向本站即可使用。',
    type: '类型', name: '事件名', person: '用户 ID', time: '发生时间', search: '查询', refresh: '刷新',
  },
  profiles: {
    title: '客户档案', search: '查找', searchHint: '手机号、邮箱、用户 ID、openid、淘宝昵称…', name: '姓名', city: '城市',
    firstSeen: '首次出现', lastSeen: '最近出现', identities: '身份标识', traits: '属性', merges: '合并记录',
    timeline: '行为与订单', kind: '类型', value: '值', scope: '范围', split: '拆分所选', splitConfirm: '所选标识不是这个人？拆分后不会再自动合并。', splitDone: '已拆分为 {n} 个新档案', merge: '合并', mergeHint: '另一个档案 ID', consents: '授权（同意）', noConsent: '无授权记录：不可营销触达', channel: '渠道', purpose: '用途', status: '状态', granted: '已同意', withdrawn: '已撤回', source: '来源', at: '时间', masked: '个人信息已脱敏',
  },
  orders: {
    title: '订单', platform: '平台', status: '状态', store: '店铺', orderNo: '订单号', total: '金额', receiver: '收件人',
    orderedAt: '下单时间', buyer: '买家', openProfile: '查看客户档案', quantity: '数量', timeline: '状态时间线',
    s: { unpaid: '待付款', paid: '已付款', shipped: '已发货', completed: '已完成', refunded: '已退款', cancelled: '已取消' },
  },
  imports: {
    title: '数据导入', preset: '文件格式', file: '文件', upload: '上传并导入', status: '状态', rows: '总行数',
    accepted: '成功', rejected: '失败（下载）', created: '上传时间', error: '错误',
    hint: '支持 CSV（UTF-8 / GBK）、XLSX、JSONL、Parquet；重复导入同一文件不会产生重复数据；每一行失败都有原因可下载。',
    s: { queued: '排队中', running: '导入中', done: '已完成', failed: '失败' },
  },
  audit: { title: '审计日志', at: '时间', actor: '操作者', action: '操作', target: '对象', more: '加载更多' },
  jobs: {
    title: '后台任务', task: '任务', status: '状态', runAt: '计划时间', attempts: '尝试次数',
    error: '最近错误', retry: '重试', cancel: '取消', all: '全部',
  },
  identity: {
    title: '身份图谱', rebuild: '全量重建', queued: '已加入队列，后台执行中',
    explain: '全量重建一次性重新计算所有标识（手机号、unionid、openid、平台买家 ID…）之间的关联，并与实时合并的结果逐一比对；不一致的客户会按当前规则修复（合并或拆分），修复记入合并审计。',
    requestedAt: '发起时间', status: '状态', identifiers: '标识数', links: '关联数', people: '客户数',
    shared: '共享标识', conflicts: '冲突', repaired: '修复标识数', duration: '耗时', error: '错误',
    statuses: { queued: '排队中', running: '进行中', done: '完成', failed: '失败' },
  },
  roles: { owner: '所有者', admin: '管理员', operator: '运营', analyst: '分析师', viewer: '只读' },
  common: { confirm: '确定', cancel: '取消', none: '暂无数据', forbidden: '你的角色无权查看此页面' },
}
