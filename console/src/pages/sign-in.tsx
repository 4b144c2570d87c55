/** Signing in: email and password; the session cookie is set by the answer. */
import { useState } from 'preact/hooks';
import { consoleApi, type SessionInfo } from '../api';
import { Field, FormError, text, useSubmit, type Errors } from '../form';

export function SignInPage({ onSignedIn }: { onSignedIn: (session: SessionInfo) => void }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const { errors, busy, run } = useSubmit({ fields: ['email', 'password'] });

  const check = (): Errors => {
    const found: Errors = {};
    if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) found.email = 'an email address, like you@example.com';
    if (password === '') found.password = 'the password is missing';
    return found;
  };

  return (
    <main class="sign-in">
      <form
        class="card"
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          const session = await run(check, () => consoleApi.signIn(email.trim(), password));
          if (session) onSignedIn(session);
        }}
      >
        <h1>mps console</h1>
        <p class="muted">Sign in to manage your apps' pushes.</p>
        <Field label="Email" name="email" errors={errors}>
          <input name="email" type="email" autoComplete="username" value={email} onInput={text(setEmail)} autoFocus />
        </Field>
        <Field label="Password" name="password" errors={errors}>
          <input name="password" type="password" autoComplete="current-password" value={password} onInput={text(setPassword)} />
        </Field>
        <FormError errors={errors} />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
