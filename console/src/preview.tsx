/** How a message will look on a phone: the rendered title and body, unfilled placeholders marked. */
import type { Content } from './placeholders';

const PLACEHOLDER = /(\{\{\s*[A-Za-z0-9_.-]{1,64}\s*\}\})/g;

function Marked({ text }: { text: string }) {
  return (
    <>
      {text.split(PLACEHOLDER).map((part, i) =>
        i % 2 === 1 ? (
          <mark key={i} title="no value yet">
            {part}
          </mark>
        ) : (
          part
        ),
      )}
    </>
  );
}

export function MessagePreview(props: { content: Content; pushType?: string; note?: string }) {
  const { title, body, extras } = props.content;
  if (props.pushType === 'silent') {
    return (
      <div class="preview silent" data-preview>
        <p class="muted">A silent push shows nothing: the app gets its payload and extras.</p>
        {extras && <Extras extras={extras} />}
      </div>
    );
  }
  return (
    <div class="preview" data-preview>
      <div class="phone-notification">
        <div class="app-line">mps · now</div>
        <div class="title" data-preview-title>
          {title ? <Marked text={title} /> : <span class="muted">(no title)</span>}
        </div>
        <div class="body" data-preview-body>
          {body ? <Marked text={body} /> : <span class="muted">(no body)</span>}
        </div>
      </div>
      {extras && <Extras extras={extras} />}
      {props.note && <p class="hint">{props.note}</p>}
    </div>
  );
}

function Extras({ extras }: { extras: Record<string, string> }) {
  return (
    <dl class="extras">
      {Object.entries(extras).map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>
            <Marked text={v} />
          </dd>
        </div>
      ))}
    </dl>
  );
}
