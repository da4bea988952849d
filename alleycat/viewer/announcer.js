// Rank changes for screen readers, through one polite ARIA live region.
//
// Standings change every few seconds; announcing each change would make a screen reader talk
// without pause. So at most one announcement per `gapMs`, and it always says the latest state:
// changes in between replace each other instead of queueing up.

export class Announcer {
  constructor(region, { gapMs = 10_000, clock = () => Date.now() } = {}) {
    this.region = region;
    this.gapMs = gapMs;
    this.clock = clock;
    this.lastAt = -Infinity;
    this.pending = null;
    this.timer = null;
  }

  say(text) {
    this.pending = text;
    const wait = this.lastAt + this.gapMs - this.clock();
    if (wait <= 0) this.#flush();
    else if (this.timer === null) this.timer = setTimeout(() => this.#flush(), wait);
  }

  #flush() {
    this.timer = null;
    if (this.pending === null) return;
    this.region.textContent = this.pending;
    this.pending = null;
    this.lastAt = this.clock();
  }
}

function ordinal(n) {
  const tail = n % 100 >= 11 && n % 100 <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${tail}`;
}

/**
 * What to announce after `standings` replaced `previous` (racerId -> rank), or null.
 * With a followed racer: that racer's place; otherwise the top 3 when its order changed.
 */
export function rankChangeText(previous, standings, followed) {
  if (!previous.size) return null;
  if (followed !== null && followed !== undefined) {
    const now = standings.find((s) => s.racerId === followed);
    const before = previous.get(followed);
    if (!now || before === undefined || before === now.rank) return null;
    const verb = now.rank < before ? "up" : "down";
    return `${now.name} moved ${verb} to ${ordinal(now.rank)} place.`;
  }
  const top = standings.slice(0, 3);
  const earlier = [...previous.entries()].sort((a, b) => a[1] - b[1] || a[0] - b[0]).slice(0, 3);
  const changed = top.some((s, i) => !earlier[i] || earlier[i][0] !== s.racerId);
  if (!changed) return null;
  return `Top 3: ${top.map((s) => `${ordinal(s.rank)} ${s.name}`).join(", ")}.`;
}
