// Typed API client generated from the server's OpenAPI schema (src/api/schema.d.ts).
import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema'

export type Schemas = components['schemas']

function cookie(name: string): string | undefined {
  return document.cookie
    .split('; ')
    .find((c) => c.startsWith(name + '='))
    ?.split('=')[1]
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (!['GET', 'HEAD', 'OPTIONS'].includes(request.method)) {
      const token = cookie('siyu_csrf')
      if (token) request.headers.set('X-CSRF-Token', decodeURIComponent(token))
    }
    return request
  },
}

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' })
api.use(csrf)

export interface ApiError {
  code: string
  message: string
  details?: unknown
}

export function errorMessage(error: unknown): string {
  if (error && typeof error === 'object' && 'message' in error) {
    return String((error as ApiError).message)
  }
  return String(error)
}

/** POST a multipart form (a file upload) with the session's CSRF token: the JSON answer, or the error. */
export async function postForm<T>(url: string, form: FormData): Promise<{ data?: T; error?: ApiError }> {
  const token = cookie('siyu_csrf')
  const headers: Record<string, string> = token ? { 'X-CSRF-Token': decodeURIComponent(token) } : {}
  const res = await fetch(url, { method: 'POST', body: form, credentials: 'same-origin', headers })
  const body = await res.json()
  return res.ok ? { data: body as T } : { error: body as ApiError }
}
