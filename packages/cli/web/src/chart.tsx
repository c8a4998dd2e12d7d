// A state chart as SVG, top to bottom: states in rows by their longest distance from the initial
// state; a transition to the next row is a straight arrow, one that skips rows arcs on the right, one
// that goes back arcs on the left, a self-transition is a loop on the right, and transitions taken
// from any state leave a dashed "any state" box. The current state and the last transition taken
// are highlighted.
import type { Chart } from '../../src/inspector/protocol';

const W = 150;
const H = 34;
const ROW = 70;
const COL = 200;
const LEFT = 150;
const RIGHT = 190;
const TOP = 34;

interface Placed {
  id: string;
  x: number;
  y: number;
  row: number;
  final?: boolean;
  any?: boolean;
}

export function layout(chart: Chart): { nodes: Map<string, Placed>; width: number; height: number } {
  const out = new Map<string, string[]>();
  for (const s of chart.states) out.set(s.id, []);
  for (const t of chart.transitions) if (t.from !== '*' && t.to && t.to !== t.from) out.get(t.from)?.push(t.to);
  // Longest path from the initial state, ignoring edges that close a cycle.
  const layer = new Map<string, number>();
  const onStack = new Set<string>();
  const visit = (id: string, depth: number): void => {
    if ((layer.get(id) ?? -1) >= depth || onStack.has(id)) return;
    layer.set(id, depth);
    onStack.add(id);
    for (const n of out.get(id) ?? []) visit(n, depth + 1);
    onStack.delete(id);
  };
  visit(chart.initial, 0);
  // States reached only from "any state" come after the rest.
  for (const t of chart.transitions) {
    if (t.from === '*' && t.to && !layer.has(t.to)) visit(t.to, Math.max(0, ...layer.values()) + 1);
  }
  for (const s of chart.states) if (!layer.has(s.id)) layer.set(s.id, Math.max(0, ...layer.values()) + 1);
  const rows = new Map<number, string[]>();
  for (const s of chart.states) {
    const l = layer.get(s.id)!;
    rows.set(l, [...(rows.get(l) ?? []), s.id]);
  }
  const cols = Math.max(...[...rows.values()].map((r) => r.length));
  const nodes = new Map<string, Placed>();
  for (const [l, ids] of rows) {
    const offset = ((cols - ids.length) * COL) / 2;
    ids.forEach((id, i) =>
      nodes.set(id, { id, row: l, x: LEFT + offset + i * COL, y: TOP + l * ROW, final: chart.states.find((s) => s.id === id)?.final }),
    );
  }
  let width = LEFT + (cols - 1) * COL + W + RIGHT;
  const anyTargets = chart.transitions.filter((t) => t.from === '*' && t.to).map((t) => nodes.get(t.to!)!);
  if (anyTargets.length > 0) {
    const first = anyTargets.reduce((a, b) => (a.row <= b.row ? a : b));
    const row = Math.max(0, first.row - 1);
    nodes.set('*', { id: '*', row, x: LEFT + (cols - 1) * COL + W + 60, y: TOP + row * ROW + 10, any: true });
    width += 80;
  }
  const maxRow = Math.max(...[...nodes.values()].map((n) => n.row));
  return { nodes, width, height: TOP + maxRow * ROW + H + 30 };
}

interface Props {
  chart: Chart;
  current: string | null;
  /** The last transition taken: its event and the state it left. */
  lastEvent?: { event: string; from: string | null } | null;
}

interface Label {
  x: number;
  y: number;
  anchor: 'start' | 'middle' | 'end';
  lines: Array<{ text: string; hot: boolean }>;
}

export function StateChart({ chart, current, lastEvent }: Props) {
  const { nodes, width, height } = layout(chart);
  const paths: preact.JSX.Element[] = [];
  const labels: Label[] = [];
  // Transitions between the same two states share one arrow, their events listed together.
  const groups = new Map<string, { from: Placed; to: Placed; events: Array<{ text: string; hot: boolean }> }>();
  for (const t of chart.transitions) {
    const from = nodes.get(t.from);
    if (!from) continue;
    const to = t.to ? nodes.get(t.to) : from;
    if (!to) continue;
    const key = `${t.from}->${to.id}`;
    const g = groups.get(key) ?? { from, to, events: [] };
    const hot = !!lastEvent && lastEvent.event === t.event && (t.from === '*' || lastEvent.from === t.from);
    g.events.push({ text: t.event + (t.guard ? ` [${t.guard}]` : ''), hot });
    groups.set(key, g);
  }
  let right = 0;
  let left = 0;
  // Right arcs pass outside the self-loops' labels.
  let loopExtent = 0;
  for (const g of groups.values()) if (g.from === g.to) loopExtent = Math.max(loopExtent, 40 + 6.8 * Math.max(...g.events.map((e) => e.text.length)));
  const arcBase = Math.max(34, loopExtent + 14);
  for (const [key, g] of groups) {
    const { from, to } = g;
    const hot = g.events.some((e) => e.hot);
    const cls = `edge${hot ? ' hot' : ''}`;
    const marker = `url(#${hot ? 'ah-hot' : 'ah'})`;
    let d: string;
    let label: Label;
    if (from === to) {
      const x = from.x + W;
      const y = from.y + H / 2;
      d = `M ${x} ${y - 9} C ${x + 34} ${y - 24}, ${x + 34} ${y + 24}, ${x} ${y + 9}`;
      label = { x: x + 30, y: y + 4, anchor: 'start', lines: g.events };
    } else if (from.any) {
      const x1 = from.x + W / 2;
      const y1 = from.y + H;
      const x2 = to.x + W;
      const y2 = to.y + H / 2;
      d = `M ${x1} ${y1} C ${x1} ${y2}, ${x1} ${y2}, ${x2} ${y2}`;
      label = { x: x1 + 6, y: (y1 + y2) / 2, anchor: 'start', lines: g.events };
    } else if (to.row === from.row + 1 && Math.abs(to.x - from.x) < COL / 2) {
      const x = from.x + W / 2;
      d = `M ${x} ${from.y + H} L ${x} ${to.y}`;
      label = { x: x + 8, y: (from.y + H + to.y) / 2 + 4, anchor: 'start', lines: g.events };
    } else if (to.row === from.row) {
      const fwd = to.x > from.x;
      const y = from.y + H / 2;
      d = `M ${fwd ? from.x + W : from.x} ${y} L ${fwd ? to.x : to.x + W} ${y}`;
      label = { x: (from.x + to.x + W) / 2, y: y - 6, anchor: 'middle', lines: g.events };
    } else if (to.row > from.row) {
      // Down past other states: an arc on the right.
      const k = right++;
      const x = Math.max(from.x, to.x) + W + arcBase + 26 * k;
      const y1 = from.y + H / 2 + 6;
      const y2 = to.y + H / 2 - 6;
      d = `M ${from.x + W} ${y1} C ${x} ${y1}, ${x} ${y2}, ${to.x + W} ${y2}`;
      label = { x: x - 20, y: (y1 + y2) / 2 + 4 + ((k % 3) - 1) * 13, anchor: 'start', lines: g.events };
    } else {
      // Back up: an arc on the left.
      const k = left++;
      const x = Math.min(from.x, to.x) - 30 - 22 * k;
      const y1 = from.y + H / 2 + 6;
      const y2 = to.y + H / 2 + 6;
      d = `M ${from.x} ${y1} C ${x} ${y1}, ${x} ${y2}, ${to.x} ${y2}`;
      label = { x: x + 16, y: (y1 + y2) / 2 + 4 + ((k % 3) - 1) * 13, anchor: 'end', lines: g.events };
    }
    paths.push(<path key={key} class={cls} d={d} marker-end={marker} />);
    labels.push(label);
  }
  const init = nodes.get(chart.initial);
  const viewW = width + (right > 0 ? Math.max(0, arcBase - 34) + 26 * Math.max(0, right - 3) : loopExtent > 0 ? 0 : 0);
  return (
    <svg class="chart" viewBox={`0 0 ${viewW} ${height}`} width="100%" style={{ maxWidth: `${viewW}px` }} role="img" aria-label={`${chart.machine} state chart`} data-testid="chart">
      <defs>
        <marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
        <marker id="ah-hot" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead hot" />
        </marker>
      </defs>
      {init ? (
        <g>
          <circle class="start" cx={init.x + W / 2} cy={init.y - 24} r={4} />
          <path class="edge" d={`M ${init.x + W / 2} ${init.y - 20} L ${init.x + W / 2} ${init.y}`} marker-end="url(#ah)" />
        </g>
      ) : null}
      {paths}
      {[...nodes.values()].map((n) => (
        <g key={n.id} class={`state${n.id === current ? ' current' : ''}${n.final ? ' final' : ''}${n.any ? ' any' : ''}`} data-state={n.id}>
          <rect x={n.x} y={n.y} width={n.any ? W - 40 : W} height={H} rx={n.any ? 4 : 11} />
          {n.final ? <rect class="inner" x={n.x + 3} y={n.y + 3} width={W - 6} height={H - 6} rx={8} /> : null}
          <text x={n.x + (n.any ? W - 40 : W) / 2} y={n.y + H / 2 + 4} text-anchor="middle">
            {n.any ? 'any state' : n.id}
          </text>
        </g>
      ))}
      {labels.map((l, i) =>
        l.lines.map((e, j) => (
          <text key={`${i}-${j}`} class={`elabel${e.hot ? ' hot' : ''}`} x={l.x} y={l.y + (j - (l.lines.length - 1) / 2) * 12} text-anchor={l.anchor}>
            {e.text}
          </text>
        )),
      )}
    </svg>
  );
}
