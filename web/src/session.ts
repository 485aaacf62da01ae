// The signed-in user, current workspace and role, shared by every page.
import { reactive } from 'vue'
import { api, type Schemas } from './api/client'

type SessionOut = Schemas['SessionOut']

export const session = reactive<{ loaded: boolean; current: SessionOut | null }>({
  loaded: false,
  current: null,
})

export async function loadSession(): Promise<SessionOut | null> {
  const { data } = await api.GET('/api/v1/session')
  session.current = data ?? null
  session.loaded = true
  return session.current
}

export async function login(email: string, password: string): Promise<string | null> {
  const { data, error } = await api.POST('/api/v1/session/login', { body: { email, password } })
  if (error) return (error as { message: string }).message
  session.current = data
  session.loaded = true
  return null
}

export async function switchWorkspace(workspaceId: string): Promise<void> {
  const { data } = await api.POST('/api/v1/session/workspace', { body: { workspace_id: workspaceId } })
  if (data) session.current = data
}

export async function logout(): Promise<void> {
  await api.POST('/api/v1/session/logout')
  session.current = null
}

const RANK: Record<string, number> = { viewer: 0, analyst: 1, operator: 2, admin: 3, owner: 4 }

export function hasRole(role: keyof typeof RANK): boolean {
  const mine = session.current?.role
  return mine != null && RANK[mine] >= RANK[role]
}
