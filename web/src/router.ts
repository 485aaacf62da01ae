import { createRouter, createWebHistory } from 'vue-router'
import { loadSession, session } from './session'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
    {
      path: '/',
      component: () => import('./components/AppLayout.vue'),
      children: [
        { path: '', name: 'dashboard', component: () => import('./views/DashboardView.vue') },
        { path: 'profiles', name: 'profiles', component: () => import('./views/ProfilesView.vue') },
        { path: 'profiles/:id', name: 'profile', component: () => import('./views/ProfileView.vue') },
        { path: 'orders', name: 'orders', component: () => import('./views/OrdersView.vue') },
        { path: 'imports', name: 'imports', component: () => import('./views/ImportsView.vue') },
        { path: 'events', name: 'events', component: () => import('./views/EventsView.vue') },
        { path: 'members', name: 'members', component: () => import('./views/MembersView.vue') },
        { path: 'keys', name: 'keys', component: () => import('./views/KeysView.vue') },
        { path: 'audit', name: 'audit', component: () => import('./views/AuditView.vue') },
        { path: 'rfm', name: 'rfm', component: () => import('./views/RfmView.vue') },
        { path: 'tags', name: 'tags', component: () => import('./views/TagsView.vue') },
        { path: 'tags/:id', name: 'tag', component: () => import('./views/TagView.vue') },
        { path: 'segments', name: 'segments', component: () => import('./views/SegmentsView.vue') },
        { path: 'segments/:id', name: 'segment', component: () => import('./views/SegmentView.vue') },
        { path: 'campaigns', name: 'campaigns', component: () => import('./views/CampaignsView.vue') },
        { path: 'campaigns/:id', name: 'campaign', component: () => import('./views/CampaignView.vue') },
        { path: 'links', name: 'links', component: () => import('./views/LinksView.vue') },
        { path: 'landing-pages', name: 'landing', component: () => import('./views/LandingPagesView.vue') },
        { path: 'channels', name: 'channels', component: () => import('./views/ChannelsView.vue') },
        { path: 'templates', name: 'templates', component: () => import('./views/TemplatesView.vue') },
        { path: 'templates/:id', name: 'template', component: () => import('./views/TemplateView.vue') },
        { path: 'identity', name: 'identity', component: () => import('./views/IdentityView.vue') },
        { path: 'jobs', name: 'jobs', component: () => import('./views/JobsView.vue') },
      ],
    },
    { path: '/:pathMatch(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  if (!session.loaded) await loadSession()
  if (!to.meta.public && !session.current) return { name: 'login', query: { next: to.fullPath } }
  if (to.name === 'login' && session.current) return { name: 'dashboard' }
  return true
})
