// The inspector's page: live from the daemon (server-sent events) or replaying a trace file.
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ActorKind, EventRecord, RequestView, StreamMessage, TraceLine, WorkerView } from '../../src/inspector/protocol';
import { StateChart } from './chart.js';
import { fmtClock, fmtCount, fmtDuration, fmtRate, syscallOf } from './format.js';
import { HISTORY_PER_ACTOR, Replay, applyFrame, applyHello, emptyState, parseTrace, views, type PageState } from './store.js';

interface Selection {
  id: string;
  kind: ActorKind;
  label: string;
}

type Mode = { kind: 'live' } | { kind: 'replay'; replay: Replay; name: string };

function useLive(enabled: boolean): { state: PageState; connected: boolean; version: number } {
  const ref = useRef<PageState>(emptyState());
  const [version, setVersion] = useState(0);
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    if (!enabled) return;
    let pending = false;
    const es = new EventSource('/events');
    es.onopen = () => setConnected(true);
    es.onerror = () => setConnected(false);
    es.onmessage = (ev: MessageEvent<string>) => {
      const m = JSON.parse(ev.data) as StreamMessage;
      if (m.kind === 'hello') {
        ref.current = emptyState();
        applyHello(ref.current, m);
      } else applyFrame(ref.current, m);
      if (!pending) {
        pending = true;
        requestAnimationFrame(() => {
          pending = false;
          setVersion((v) => v + 1);
        });
      }
    };
    return () => es.close();
  }, [enabled]);
  return { state: ref.current, connected, version };
}

function Badge({ state, kind }: { state: string; kind: string }) {
  return (
    <span class={`badge ${kind}-${state}`} data-testid="state">
      {state}
    </span>
  );
}

function RequestRow({ r, s, workers, onSelect, selected }: { r: RequestView; s: PageState; workers: WorkerView[]; onSelect: (sel: Selection) => void; selected: boolean }) {
  const long = r.ageMs >= s.longWaitMs;
  const worker = r.unique !== null ? workers.find((w) => w.unique === r.unique && w.state !== 'idle') : undefined;
  const label = `${r.op} #${r.unique ?? '?'}`;
  return (
    <tr
      class={`req${long ? ' long' : ''}${selected ? ' selected' : ''}`}
      data-testid="request-row"
      data-op={r.op}
      data-phase={r.phase}
      data-long={long ? 'true' : 'false'}
      onClick={() => onSelect({ id: r.id, kind: 'request', label })}
    >
      <td class="op">{r.op}</td>
      <td class="num">{r.unique ?? '–'}</td>
      <td class="num">{r.nodeid ?? '–'}</td>
      <td>
        <Badge state={r.phase} kind="request" />
        {r.interrupted ? <span class="flag">interrupted</span> : null}
      </td>
      <td class="num">{r.queue}</td>
      <td class="worker-cell">{worker ? `worker ${worker.workerId} · ${worker.state === 'blockedInSyscall' ? 'blocked' : worker.state}` : ''}</td>
      <td class={`num age${long ? ' long' : ''}`}>{fmtDuration(r.ageMs)}</td>
    </tr>
  );
}

function WorkerCard({ w, onSelect, selected, longWaitMs }: { w: WorkerView; onSelect: (s: Selection) => void; selected: boolean; longWaitMs: number }) {
  const blocked = w.state === 'blockedInSyscall';
  const long = blocked && w.sinceMs >= longWaitMs;
  const label = `worker ${w.workerId}`;
  return (
    <button
      class={`card worker${selected ? ' selected' : ''}${long ? ' long' : ''}`}
      data-testid={`worker-${w.workerId}`}
      data-state={w.state}
      data-unique={w.unique ?? ''}
      onClick={() => onSelect({ id: w.id, kind: 'worker', label })}
    >
      <div class="card-head">
        <span class="title">
          {label} <span class="muted">{w.lane}</span>
        </span>
        <Badge state={w.state} kind="worker" />
      </div>
      <div class="worker-body">
        {w.state === 'idle' || w.state === 'starting' || w.state === 'exited' ? (
          <span class="muted">{w.state === 'idle' ? `idle for ${fmtDuration(w.sinceMs)}` : w.state}</span>
        ) : (
          <span>
            {blocked ? 'blocked in ' : w.state === 'cancelling' ? 'cancelling ' : 'running '}
            <code>{blocked ? syscallOf(w.op) : (w.op ?? '')}</code>
            {w.unique && w.unique !== '0' ? <span> for request #{w.unique}</span> : null}
            <span class={`since${long ? ' long' : ''}`}> · {fmtDuration(w.sinceMs)}</span>
          </span>
        )}
      </div>
      <div class="card-foot muted">
        tid {w.tid || '–'} · {fmtCount(w.completed)} calls{w.inFlight > 1 ? ` · ${w.inFlight - 1} queued` : ''}
      </div>
    </button>
  );
}

function EventList({ events, t0 }: { events: EventRecord[]; t0: number }) {
  if (events.length === 0) return <p class="muted small">No events seen for this actor yet (request actors report while the page watches them).</p>;
  return (
    <ol class="events" data-testid="events">
      {[...events].reverse().map((e, i) => (
        <li key={`${e.t}-${i}`}>
          <span class="when">{fmtDuration(t0 - e.t)} ago</span>
          <span class="ev">{e.event}</span>
          {e.detail ? (
            <span class="detail">
              {Object.entries(e.detail)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ')}
            </span>
          ) : null}
          <span class="to">→ {e.state}</span>
        </li>
      ))}
    </ol>
  );
}

function Detail({ sel, s, current, onClose }: { sel: Selection; s: PageState; current: string | null; onClose: () => void }) {
  const chart = s.charts?.[sel.kind];
  const history = s.histories.get(sel.id) ?? [];
  const last = history[history.length - 1];
  const prev = history[history.length - 2];
  const state = current ?? last?.state ?? null;
  return (
    <div class="detail-inner" data-testid="detail">
      <div class="detail-head">
        <div>
          <div class="kind">{sel.kind === 'queue' ? 'virtqueue' : sel.kind === 'worker' ? 'pool worker' : sel.kind} actor</div>
          <h3>{sel.label}</h3>
          <div class="muted small">{sel.id.includes(':') && !sel.id.startsWith('q') ? `xstate session ${sel.id}` : sel.id}</div>
        </div>
        <div class="detail-state">
          {state ? <Badge state={state} kind={sel.kind} /> : <span class="muted">finished</span>}
          <button class="ghost" onClick={onClose} aria-label="close">
            ✕
          </button>
        </div>
      </div>
      {chart ? <StateChart chart={chart} current={state} lastEvent={last && last.event !== 'xstate.init' ? { event: last.event, from: prev?.state ?? null } : null} /> : null}
      <h4>Recent events</h4>
      <EventList events={history} t0={s.t} />
    </div>
  );
}

function ReplayBar({ mode, index, setIndex, playing, setPlaying }: { mode: Extract<Mode, { kind: 'replay' }>; index: number; setIndex: (i: number) => void; playing: boolean; setPlaying: (p: boolean) => void }) {
  const n = mode.replay.lines.length;
  const line = mode.replay.lines[index];
  const step = (d: number) => setIndex(Math.max(-1, Math.min(n - 1, index + d)));
  const nextEvent = (dir: 1 | -1) => {
    for (let i = index + dir; i >= 0 && i < n; i += dir) {
      if (mode.replay.lines[i].kind === 'event') return setIndex(i);
    }
  };
  return (
    <div class="replaybar" data-testid="replaybar">
      <span class="file" title={mode.name}>
        ● {mode.name}
      </span>
      <button onClick={() => setIndex(-1)} title="to the start" data-testid="replay-start">
        |◀
      </button>
      <button onClick={() => nextEvent(-1)} title="previous event" data-testid="replay-prev-event">
        ◀◀
      </button>
      <button onClick={() => step(-1)} title="step back" data-testid="replay-back">
        ◀
      </button>
      <button onClick={() => setPlaying(!playing)} class="play" data-testid="replay-play">
        {playing ? '❚❚' : '▶ play'}
      </button>
      <button onClick={() => step(1)} title="step forward" data-testid="replay-forward">
        ▶
      </button>
      <button onClick={() => nextEvent(1)} title="next event" data-testid="replay-next-event">
        ▶▶
      </button>
      <button onClick={() => setIndex(n - 1)} title="to the end" data-testid="replay-end">
        ▶|
      </button>
      <input type="range" min={-1} max={n - 1} value={index} onInput={(e) => setIndex(Number((e.target as HTMLInputElement).value))} data-testid="replay-slider" />
      <span class="pos" data-testid="replay-pos">
        {index + 1} / {n}
      </span>
      <span class="line-kind muted">{line ? (line.kind === 'event' ? `${line.actorKind} ${line.event} → ${line.state}` : line.kind) : 'start'}</span>
    </div>
  );
}

function App() {
  const params = new URLSearchParams(location.search);
  const [mode, setMode] = useState<Mode>({ kind: 'live' });
  const [index, setIndex] = useState(-1);
  const [playing, setPlaying] = useState(false);
  const [sel, setSel] = useState<Selection | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [, tick] = useState(0);
  const live = useLive(mode.kind === 'live' && !params.get('replay'));

  const openTrace = (text: string, name: string) => {
    const { lines, bad } = parseTrace(text);
    if (lines.length === 0 || lines[0].kind !== 'header') {
      setError(`${name}: not a vfsd trace`);
      return;
    }
    setError(bad ? `${bad} unreadable lines skipped` : null);
    setMode({ kind: 'replay', replay: new Replay(lines as TraceLine[]), name });
    setIndex(0);
    setPlaying(false);
  };
  const fetchTrace = (url: string) =>
    fetch(url)
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`${url}: ${r.status}`))))
      .then((text) => openTrace(text, url === '/trace' ? (live.state.recording ?? 'recorded trace') : url))
      .catch((e: Error) => setError(e.message));

  useEffect(() => {
    const r = params.get('replay');
    if (r) void fetchTrace(r);
  }, []);

  // Playing: one line per frame, faster for long traces.
  useEffect(() => {
    if (!playing || mode.kind !== 'replay') return;
    const n = mode.replay.lines.length;
    const stride = Math.max(1, Math.round(n / 600));
    const id = setInterval(() => {
      setIndex((i) => {
        if (i + stride >= n - 1) {
          setPlaying(false);
          return n - 1;
        }
        return i + stride;
      });
    }, 40);
    return () => clearInterval(id);
  }, [playing, mode]);

  // The keyboard steps in replay: arrows, with shift for the next event.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (mode.kind !== 'replay' || (e.target as HTMLElement).tagName === 'INPUT') return;
      if (e.key === 'ArrowRight') setIndex((i) => Math.min(mode.replay.lines.length - 1, i + 1));
      if (e.key === 'ArrowLeft') setIndex((i) => Math.max(-1, i - 1));
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [mode]);

  // Ages tick between frames in live mode.
  useEffect(() => {
    const id = setInterval(() => tick((v) => v + 1), 1000);
    return () => clearInterval(id);
  }, []);

  const s = useMemo(() => (mode.kind === 'replay' ? mode.replay.stateAt(index) : live.state), [mode, index, live.version, live.state]);
  const v = views(s);
  const sample = s.sample;
  const select = (x: Selection) => setSel(sel && sel.id === x.id ? null : x);
  const currentOf = (x: Selection): string | null => {
    switch (x.kind) {
      case 'device':
        return v.devices.find((d) => d.id === x.id)?.state ?? null;
      case 'queue':
        return v.queues.find((q) => q.id === x.id)?.state ?? null;
      case 'worker':
        return v.workers.find((w) => w.id === x.id)?.state ?? null;
      case 'request':
        return v.requests.find((r) => r.id === x.id)?.phase ?? s.latest.get(x.id)?.state ?? null;
    }
  };
  // Live: the server keeps each actor's last events; fetch them when an actor is selected (the
  // stream may have skipped some under load), then the frames add to them.
  useEffect(() => {
    if (!sel || mode.kind !== 'live') return;
    const id = sel.id;
    void fetch(`/api/history?actor=${encodeURIComponent(id)}`)
      .then((r) => (r.ok ? (r.json() as Promise<EventRecord[]>) : []))
      .then((server) => {
        if (server.length === 0) return;
        const h = live.state.histories.get(id) ?? [];
        const lastServer = server[server.length - 1].t;
        const merged = [...server, ...h.filter((e) => e.t > lastServer)].slice(-HISTORY_PER_ACTOR);
        live.state.histories.set(id, merged);
        tick((v) => v + 1);
      })
      .catch(() => undefined);
  }, [sel?.id, mode.kind]);

  const longCount = v.requests.filter((r) => r.ageMs >= s.longWaitMs).length;

  return (
    <div class={`app ${mode.kind}`}>
      <header>
        <div class="brand">
          <span class="logo">◆</span> vfsd <span class="muted">inspector</span>
        </div>
        <div class="status">
          {mode.kind === 'live' ? (
            <span class={`pill ${live.connected ? 'ok' : 'bad'}`} data-testid="conn">
              {live.connected ? '● live' : '○ disconnected'}
            </span>
          ) : (
            <span class="pill replay" data-testid="conn">
              ▶ replay
            </span>
          )}
          {sample ? (
            <>
              <span class="stat">
                <b>{fmtRate(sample.rate)}</b> requests
              </span>
              <span class="stat">
                <b>{v.requestsTotal}</b> in flight
              </span>
              {longCount ? (
                <span class="stat warn">
                  <b>{longCount}</b> waiting &gt; {fmtDuration(s.longWaitMs)}
                </span>
              ) : null}
              <span class="stat muted" title="How request actors are watched: every one (full), in short windows at high load, or not at all">
                requests watched: {sample.mode}
              </span>
              <span class="stat muted">{fmtClock(s.t)}</span>
            </>
          ) : (
            <span class="muted">waiting for the daemon…</span>
          )}
        </div>
        <div class="actions">
          {mode.kind === 'live' && live.state.recording ? (
            <button onClick={() => void fetchTrace('/trace')} data-testid="open-recording">
              Replay this run's trace
            </button>
          ) : null}
          <label class="button">
            Open trace…
            <input
              type="file"
              accept=".jsonl,.json,.ndjson,.txt"
              data-testid="trace-file"
              onChange={(e) => {
                const f = (e.target as HTMLInputElement).files?.[0];
                if (f) void f.text().then((t) => openTrace(t, f.name));
              }}
            />
          </label>
          {mode.kind === 'replay' && !params.get('replay') ? (
            <button
              onClick={() => {
                setMode({ kind: 'live' });
                setPlaying(false);
              }}
            >
              Back to live
            </button>
          ) : null}
        </div>
      </header>
      {error ? <div class="error">{error}</div> : null}
      <main class={sel ? 'with-detail' : ''}>
        <div class="board">
          <section>
            <h2>Device</h2>
            <div class="cards">
              {v.devices.length === 0 ? <p class="muted">No front-end connected.</p> : null}
              {v.devices.map((d) => (
                <button class={`card device${sel?.id === d.id ? ' selected' : ''}`} data-testid="device" data-state={d.state} onClick={() => select({ id: d.id, kind: 'device', label: d.label })}>
                  <div class="card-head">
                    <span class="title">{d.label}</span>
                    <Badge state={d.state} kind="device" />
                  </div>
                  <dl class="kv">
                    <dt>features</dt>
                    <dd>{d.features}</dd>
                    <dt>memory regions</dt>
                    <dd>{d.regions}</dd>
                    <dt>queues</dt>
                    <dd>{d.queues}</dd>
                    <dt>answered</dt>
                    <dd>{fmtCount(d.completed)}</dd>
                    <dt>live requests</dt>
                    <dd>{d.live}</dd>
                    <dt>guest faults</dt>
                    <dd title={Object.entries(d.guestFaultsByKind ?? {}).map(([k, n]) => `${k}: ${n}`).join('\n')}>{fmtCount(d.guestFaults ?? 0)}</dd>
                  </dl>
                </button>
              ))}
            </div>
          </section>
          <section>
            <h2>Virtqueues</h2>
            <div class="cards">
              {v.queues.length === 0 ? <p class="muted">No ring started.</p> : null}
              {v.queues.map((q) => {
                const label = `queue ${q.index}`;
                const fill = q.size ? Math.min(1, q.inFlight / q.size) : 0;
                return (
                  <button class={`card queue${sel?.id === q.id ? ' selected' : ''}`} data-testid={`queue-${q.index}`} data-state={q.state} data-inflight={q.inFlight} onClick={() => select({ id: q.id, kind: 'queue', label })}>
                    <div class="card-head">
                      <span class="title">
                        {label} <span class="muted">{q.index === 0 ? 'hiprio' : 'requests'}</span>
                      </span>
                      <Badge state={q.state} kind="queue" />
                    </div>
                    <div class="ring" title={`${q.inFlight} of ${q.size} descriptors in flight`}>
                      <div class="ring-fill" style={{ width: `${Math.max(fill * 100, q.inFlight ? 1.5 : 0)}%` }} />
                    </div>
                    <dl class="kv grid">
                      <dt>avail idx</dt>
                      <dd data-testid="avail-idx">{q.lastAvailIdx}</dd>
                      <dt>used idx</dt>
                      <dd data-testid="used-idx">{q.usedIdx}</dd>
                      <dt>in flight</dt>
                      <dd data-testid="inflight">
                        {q.inFlight}
                        <span class="muted"> / {q.size}</span>
                      </dd>
                      <dt>kicks</dt>
                      <dd data-testid="kicks">{fmtCount(q.kicks)}</dd>
                      <dt>notifications</dt>
                      <dd data-testid="notifications">{fmtCount(q.notifications)}</dd>
                      <dt>thread</dt>
                      <dd data-testid="queue-thread" title={q.thread.main ? 'the main thread serves this ring' : `answered in this thread: ${q.thread.servedHere}; handed to the main thread: ${q.thread.forwarded}`}>
                        {q.thread.main ? 'main' : `tid ${q.thread.tid}`}
                        <span class="muted"> on CPU {q.thread.cpu}</span>
                      </dd>
                    </dl>
                    {q.broken ? <div class="error small">{q.broken}</div> : null}
                  </button>
                );
              })}
            </div>
          </section>
          <section>
            <h2>Pool workers</h2>
            <div class="cards workers">
              {v.workers.length === 0 ? <p class="muted">No pool worker seen (pool size 0 runs calls inline; waiters start on demand).</p> : null}
              {v.workers.map((w) => (
                <WorkerCard w={w} onSelect={select} selected={sel?.id === w.id} longWaitMs={s.longWaitMs} />
              ))}
            </div>
          </section>
          <section>
            <h2>
              Requests in flight <span class="count">{v.requestsTotal}</span>
              {v.requests.length < v.requestsTotal ? <span class="muted small"> (oldest {v.requests.length} shown)</span> : null}
            </h2>
            {v.requests.length === 0 ? (
              <p class="muted">None.</p>
            ) : (
              <table class="requests">
                <thead>
                  <tr>
                    <th>opcode</th>
                    <th class="num">unique</th>
                    <th class="num">nodeid</th>
                    <th>phase</th>
                    <th class="num">queue</th>
                    <th>worker</th>
                    <th class="num">age</th>
                  </tr>
                </thead>
                <tbody>
                  {v.requests.slice(0, 200).map((r) => (
                    <RequestRow r={r} s={s} workers={v.workers} onSelect={select} selected={sel?.id === r.id} />
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </div>
        {sel ? (
          <aside class="detail">
            <Detail sel={sel} s={s} current={currentOf(sel)} onClose={() => setSel(null)} />
          </aside>
        ) : (
          <aside class="detail hint">
            <p class="muted">Click a device, queue, worker or request to see its state chart and recent events.</p>
          </aside>
        )}
      </main>
      {mode.kind === 'replay' ? <ReplayBar mode={mode} index={index} setIndex={setIndex} playing={playing} setPlaying={setPlaying} /> : null}
    </div>
  );
}

render(<App />, document.getElementById('root')!);
