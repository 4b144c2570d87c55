/** Routes live in the location hash (`#/a/APP/templates`): one index.html serves every page. */
import { useEffect, useState } from 'preact/hooks';

export const PAGES = ['push', 'templates', 'messages', 'devices', 'reports', 'channels', 'keys'] as const;
export type Page = (typeof PAGES)[number];

export interface AppRoute {
  page: Page;
  app: string;
  id?: string;
  query: URLSearchParams;
}
export type Route = { page: 'sign-in' } | { page: 'apps' } | AppRoute;

export function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'sign-in') return { page: 'sign-in' };
  if (parts[0] === 'a' && parts[1] && (PAGES as readonly string[]).includes(parts[2] ?? '')) {
    return { page: parts[2] as Page, app: parts[1], ...(parts[3] !== undefined && { id: parts[3] }), query: new URLSearchParams(search) };
  }
  return { page: 'apps' };
}

export function href(app: string, page: Page, id?: string, query?: Record<string, string>): string {
  const q = query ? new URLSearchParams(query).toString() : '';
  return `#/a/${encodeURIComponent(app)}/${page}${id === undefined ? '' : `/${encodeURIComponent(id)}`}${q ? `?${q}` : ''}`;
}

export const go = (hash: string): void => {
  window.location.hash = hash;
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}
