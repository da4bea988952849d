// The standings board: one DOM row per racer, kept for as long as the racer is on the board.
//
// Rows are keyed by racerId and never re-created or re-ordered in the DOM; a place change only
// changes the row's transform, so the browser animates the move (a CSS transition) without
// flicker, and row heights are fixed so nothing below the board shifts while standings update.

const ROW_PX = 44; // keep in step with --row-height in viewer.css (44 px: a comfortable touch target)
const MOVE_MARK_MS = 6000; // how long a "moved up/down" mark stays on a row

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 1 });

export function formatOutput(value) {
  return numberFormat.format(value);
}

function cell(className, text = "") {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

export class StandingsBoard {
  /**
   * @param {HTMLElement} list the element rows live in (role="list")
   * @param {(racerId: number) => void} onPick called when a viewer picks a racer to follow
   */
  constructor(list, onPick) {
    this.list = list;
    this.onPick = onPick;
    this.rows = new Map(); // racerId -> {element, place, fields...}
    this.highlighted = null;
    this.maxRows = 0;
  }

  /** Forget every row (another race or board is shown). */
  clear() {
    this.list.replaceChildren();
    this.rows.clear();
    this.maxRows = 0;
    this.list.style.height = "0px";
  }

  highlight(racerId) {
    this.highlighted = racerId;
    for (const [id, row] of this.rows) row.element.classList.toggle("followed", id === racerId);
  }

  /**
   * Show `standings` (rank order). Each entry: {rank, racerId, name, totalOutput, output?, second?, note?}.
   * `animate` false places rows without a transition (a different board, not a change of places).
   */
  render(standings, { animate = true } = {}) {
    const now = performance.now();
    const seen = new Set();
    standings.forEach((standing, index) => {
      seen.add(standing.racerId);
      let row = this.rows.get(standing.racerId);
      if (!row) {
        row = this.#createRow(standing.racerId);
        this.rows.set(standing.racerId, row);
        // A new row appears in its place (no slide in from the top).
        row.element.style.transition = "none";
        row.element.style.transform = `translateY(${index * ROW_PX}px)`;
        this.list.append(row.element);
        row.index = index;
        row.element.getBoundingClientRect(); // commit the start position before re-enabling transitions
        row.element.style.transition = "";
      }
      this.#update(row, standing, index, now, animate);
    });
    for (const [racerId, row] of this.rows) {
      if (!seen.has(racerId)) {
        row.element.remove();
        this.rows.delete(racerId);
      }
    }
    // The board only grows while a race runs, so a racer dropping out never shifts the page.
    this.maxRows = animate ? Math.max(this.maxRows, standings.length) : standings.length;
    this.list.style.height = `${this.maxRows * ROW_PX}px`;
    this.list.setAttribute("aria-rowcount", String(standings.length));
  }

  /** Clear "moved" marks older than a few seconds (called by the page's clock tick). */
  expireMarks() {
    const now = performance.now();
    for (const row of this.rows.values()) {
      if (row.movedAt && now - row.movedAt > MOVE_MARK_MS) {
        row.move.textContent = "";
        row.move.removeAttribute("aria-label");
        delete row.move.dataset.dir;
        row.movedAt = 0;
      }
    }
  }

  #createRow(racerId) {
    const element = document.createElement("li");
    element.className = "row";
    element.dataset.racerId = String(racerId);
    const name = document.createElement("button");
    name.type = "button";
    name.className = "name";
    name.addEventListener("click", () => this.onPick(racerId));
    const row = {
      element,
      rank: cell("rank"),
      name,
      racer: cell("racer-id"),
      total: cell("total num"),
      output: cell("output num"),
      move: cell("move"),
      index: -1,
      rankValue: null,
      movedAt: 0,
    };
    const who = document.createElement("span");
    who.className = "who";
    who.append(name, row.racer);
    element.append(row.rank, who, row.total, row.output, row.move);
    element.classList.toggle("followed", racerId === this.highlighted);
    return row;
  }

  #update(row, standing, index, now, animate) {
    const { element } = row;
    if (row.index !== index) {
      if (!animate) element.style.transition = "none";
      element.style.transform = `translateY(${index * ROW_PX}px)`;
      if (!animate) {
        element.getBoundingClientRect();
        element.style.transition = "";
      }
    }
    if (animate && row.rankValue !== null && row.rankValue !== standing.rank) {
      const delta = row.rankValue - standing.rank;
      row.move.textContent = delta > 0 ? `▲${delta}` : `▼${-delta}`;
      row.move.dataset.dir = delta > 0 ? "up" : "down";
      row.move.setAttribute("aria-label", delta > 0 ? `up ${delta}` : `down ${-delta}`);
      row.movedAt = now;
    }
    row.index = index;
    row.rankValue = standing.rank;
    element.dataset.rank = String(standing.rank);
    element.dataset.place = String(index + 1);
    element.dataset.total = String(standing.totalOutput);
    element.setAttribute("aria-posinset", String(index + 1));
    setText(row.rank, String(standing.rank));
    setText(row.name, standing.name || `Racer ${standing.racerId}`);
    setText(row.racer, `#${standing.racerId}`);
    setText(row.total, formatOutput(standing.totalOutput));
    setText(row.output, standing.note ?? (standing.output === undefined ? "" : formatOutput(standing.output)));
    row.name.setAttribute("aria-label", `${standing.name}, racer ${standing.racerId}: follow`);
  }
}

// Writing the same text again still costs a style recalculation and confuses screen readers.
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

export { ROW_PX };
