/** The console: the session, the layout (app switcher, navigation) and the page of the route. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { consoleApi, onSignedOut, type SessionInfo } from './api';
import { AppsPage } from './pages/apps';
import { ChannelsPage } from './pages/channels';
import { DevicesPage } from './pages/devices';
import { KeysPage } from './pages/keys';
import { MessagesPage } from './pages/messages';
import { PushPage } from './pages/push';
import { ReportsPage } from './pages/reports';
import { SignInPage } from './pages/sign-in';
import { TemplatesPage } from './pages/templates';
import { go, href, PAGES, useRoute, type AppRoute, type Page, type Route } from './route';
import './styles.css';

const TITLES: Record<Page, string> = {
  push: 'Quick push',
  templates: 'Templates',
  messages: 'Messages',
  devices: 'Devices and users',
  reports: 'Reports',
  channels: 'Channels',
  keys: 'API keys',
};

function PageOf({ route }: { route: AppRoute }) {
  const props = { app: route.app, id: route.id, query: route.query };
  switch (route.page) {
    case 'push':
      return <PushPage {...props} />;
    case 'templates':
      return <TemplatesPage {...props} />;
    case 'messages':
      return <MessagesPage {...props} />;
    case 'devices':
      return <DevicesPage {...props} />;
    case 'reports':
      return <ReportsPage {...props} />;
    case 'channels':
      return <ChannelsPage {...props} />;
    case 'keys':
      return <KeysPage {...props} />;
  }
}

function Shell({ session, route, refresh, signOut }: { session: SessionInfo; route: Route; refresh: () => void; signOut: () => void }) {
  const appRoute = 'app' in route ? route : undefined;
  const app = appRoute?.app;
  const current = session.apps.find((a) => a.id === app);
  useEffect(() => {
    document.title = `${'app' in route ? TITLES[route.page] : 'Apps'} · mps console`;
  }, [route]);
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/apps">
          mps console
        </a>
        {session.apps.length > 0 && (
          <select
            class="app-switch"
            aria-label="App"
            value={app ?? ''}
            onChange={(e) => {
              const id = (e.currentTarget as HTMLSelectElement).value;
              go(id ? href(id, appRoute?.page ?? 'push') : '#/apps');
            }}
          >
            <option value="">All apps</option>
            {session.apps.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name} ({a.id})
              </option>
            ))}
          </select>
        )}
        <span class="spacer" />
        <span class="who">{session.operator.email}</span>
        <button type="button" class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <div class="layout">
        {app !== undefined && (
          <nav class="sidebar" aria-label="Pages">
            {PAGES.map((page) => (
              <a key={page} href={href(app, page)} class={appRoute?.page === page ? 'active' : ''}>
                {TITLES[page]}
              </a>
            ))}
          </nav>
        )}
        <main class="content">
          {appRoute === undefined ? (
            <AppsPage session={session} refresh={refresh} />
          ) : !current ? (
            <section>
              <h1>Not your app</h1>
              <p>You are not a member of {app}. <a href="#/apps">Your apps</a></p>
            </section>
          ) : (
            <>
              <h1>
                {TITLES[appRoute.page]} <small>{current.name}</small>
              </h1>
              <PageOf route={appRoute} />
            </>
          )}
        </main>
      </div>
    </div>
  );
}

function Console() {
  const route = useRoute();
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const refresh = () => consoleApi.session().then(setSession, () => setSession(null));
  useEffect(() => {
    void refresh();
    return onSignedOut(() => setSession(null));
  }, []);
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null) {
    return (
      <SignInPage
        onSignedIn={(s) => {
          setSession(s);
          if (route.page === 'sign-in') go('#/apps');
        }}
      />
    );
  }
  const signOut = async () => {
    // Whatever the answer, this tab is signed out; the server ends the session when it can.
    await consoleApi.signOut().catch((error: unknown) => console.warn('sign-out failed', error));
    setSession(null);
    go('#/sign-in');
  };
  return <Shell session={session} route={route} refresh={refresh} signOut={signOut} />;
}

render(<Console />, document.getElementById('console') as HTMLElement);
