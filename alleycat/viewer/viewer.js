// The viewer page: a class's live race over MQTT, its past races and all-time board from the API.
//
// All state lives in `state`; every handler changes it, then calls `render()` (or the board's own
// keyed update). Live standings come only from MQTT: the API is read once per choice (a past
// race, the all-time board, "around me", the first paint of a race joined mid-way, final results).

import mqtt from "./vendor/mqtt.min.js";
import { Announcer, rankChangeText } from "./announcer.js";
import { StandingsBoard } from "./board.js";
import { guestCredentials, signMqttUrl } from "./sigv4.js";

const BOARD_SIZE = 50; // the publisher sends the top 50; ask the API for as many
const AROUND = 5;
const CLOCK_AHEAD_S = 10; // the clock runs on between updates, but never far ahead of the data

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  races: new Map(), // raceId -> {raceId, classId, status, racers, updatedAt}
  classId: null,
  followLive: true, // switch to the class's live race when one starts
  view: "none", // "race" | "alltime" | "none"
  raceId: null,
  board: null, // {raceId, classId, status, second, racers, version, standings, receivedAt}
  followed: null, // racerId whose rank changes are announced and highlighted
  around: null, // {raceId, racerId, standings, live}
  subscribed: null, // the standings topic subscribed to
  mqtt: "connecting",
  updates: 0, // standings messages applied (the browser test watches it)
};

let client = null;
let board;
let aroundBoard;
let announcer;

// -- configuration ------------------------------------------------------------------------------------

async function loadConfig() {
  const params = new URLSearchParams(location.search);
  let config = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) config = await response.json();
  } catch {
    // No config.json (e.g. opened from a file): query parameters must say everything.
  }
  const pick = (key, param) => params.get(param) ?? config[key];
  return {
    apiUrl: (pick("apiUrl", "api") || "").replace(/\/$/, ""),
    mqttUrl: pick("mqttUrl", "mqtt"),
    region: pick("region", "region") || "us-east-1",
    identityPoolId: pick("identityPoolId", "pool") || "local",
    topicPrefix: pick("topicPrefix", "prefix") || "alleycat",
    classId: params.has("class") ? Number(params.get("class")) : null,
    raceId: params.has("race") ? Number(params.get("race")) : null,
  };
}

// -- API ------------------------------------------------------------------------------------------------

async function api(path, query = {}) {
  const url = new URL(state.config.apiUrl + path);
  for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined) url.searchParams.set(k, v);
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || `${response.status} from ${path}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function notice(text) {
  const element = $("notice");
  element.textContent = text || "";
  element.hidden = !text;
}

// -- MQTT -------------------------------------------------------------------------------------------------

const standingsTopic = (raceId) => `${state.config.topicPrefix}/races/${raceId}/standings`;
const announcementsFilter = () => `${state.config.topicPrefix}/classes/+/races`;

async function connectMqtt() {
  const { mqttUrl, identityPoolId, region } = state.config;
  let url = mqttUrl;
  let resign = null;
  // Locally (localcloud's broker) a viewer names its identity in the MQTT user name, and the
  // stack's viewer policy then binds the client id to it, as AWS does with the Cognito identity.
  const localIdentity = `local-${crypto.randomUUID()}`;
  let clientId = `${localIdentity}-${crypto.randomUUID()}`;
  let username;
  if (identityPoolId === "local") username = `cognito:${localIdentity}`;
  else {
    // AWS IoT: a guest identity's credentials, and a URL signed with them. The signature is only
    // checked when a connection opens, so a fresh one is prepared for every reconnect.
    let credentials = await guestCredentials(region, identityPoolId);
    // The policy allows only client ids "<own identity id>-...": another viewer's id is refused,
    // and the random suffix lets several tabs of one browser (one identity) stay connected.
    clientId = `${credentials.identityId}-${crypto.randomUUID()}`;
    url = await signMqttUrl(mqttUrl, region, credentials);
    resign = async () => {
      if (credentials.expiresAt - Date.now() < 5 * 60_000) credentials = await guestCredentials(region, identityPoolId);
      url = await signMqttUrl(mqttUrl, region, credentials);
    };
    setInterval(() => resign().catch((e) => console.warn("re-signing the MQTT URL failed", e)), 4 * 60_000);
  }
  client = mqtt.connect(url, {
    clientId,
    username,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
    transformWsUrl: () => url,
  });
  client.on("connect", () => {
    state.mqtt = "connected";
    // A clean session forgets subscriptions: (re)subscribe on every connect.
    client.subscribe(announcementsFilter(), { qos: 1 });
    if (state.subscribed) client.subscribe(state.subscribed, { qos: 1 });
    renderConnection();
  });
  client.on("reconnect", () => {
    state.mqtt = "connecting";
    renderConnection();
  });
  client.on("offline", () => {
    state.mqtt = "offline";
    renderConnection();
  });
  client.on("error", (error) => console.warn("MQTT:", error.message));
  client.on("message", (topic, payload) => {
    let body;
    try {
      body = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      console.warn("not JSON on", topic);
      return;
    }
    if (topic === state.subscribed) onStandings(body);
    else if (topic.endsWith("/races")) onAnnouncement(body);
  });
}

function watchTopic(topic) {
  if (state.subscribed === topic) return;
  if (client && state.subscribed) client.unsubscribe(state.subscribed);
  state.subscribed = topic;
  if (client && topic && client.connected) client.subscribe(topic, { qos: 1 });
}

// -- events -----------------------------------------------------------------------------------------------

function remember(race) {
  const known = state.races.get(race.raceId);
  // Announcements can overtake a listing; a final race never turns live again.
  if (known && known.status === "final" && race.status !== "final") return;
  state.races.set(race.raceId, { ...known, ...race });
}

function onAnnouncement(race) {
  remember(race);
  if (state.classId === null) state.classId = race.classId;
  if (race.classId === state.classId && race.status === "live" && state.followLive && state.raceId !== race.raceId) {
    showRace(race.raceId);
  }
  if (race.raceId === state.raceId && race.status === "final" && state.board?.status !== "final") finishRace();
  renderPickers();
}

function onStandings(message) {
  if (message.raceId !== state.raceId || state.view !== "race") return;
  if (state.board && state.board.version !== undefined && message.version <= state.board.version) return;
  remember({ raceId: message.raceId, classId: message.classId, status: message.status, racers: message.racers });
  state.updates += 1;
  applyBoard({ ...message, receivedAt: performance.now() }, true);
  if (message.status === "final") finishRace();
}

function applyBoard(next, animate) {
  const previousRanks = new Map((state.board?.raceId === next.raceId ? state.board.standings : []).map((s) => [s.racerId, s.rank]));
  state.board = next;
  board.render(next.standings, { animate });
  if (animate) {
    const text = rankChangeText(previousRanks, next.standings, state.followed);
    if (text) announcer.say(text);
  }
  if (state.around?.raceId === next.raceId && state.around.live) updateAroundFromBoard();
  render();
}

// The race is over: its final results come from the API (the same rows the API's leaderboard serves).
async function finishRace() {
  const raceId = state.raceId;
  watchTopic(null);
  try {
    const final = await api(`/races/${raceId}/leaderboard`, { limit: BOARD_SIZE });
    if (state.raceId !== raceId) return;
    applyBoard({ ...boardFromApi(final), second: state.board?.second ?? null, version: Infinity }, true);
  } catch (error) {
    notice(`Final results of race ${raceId}: ${error.message}`);
  }
}

// -- choices ----------------------------------------------------------------------------------------------

async function selectClass(classId) {
  state.classId = classId;
  try {
    const { races } = await api("/races", { classId, limit: BOARD_SIZE });
    races.forEach(remember);
  } catch (error) {
    notice(`Races of class ${classId}: ${error.message}`);
  }
  const live = classRaces().find((r) => r.status === "live");
  const wanted = state.config.raceId && state.races.get(state.config.raceId)?.classId === classId ? state.config.raceId : null;
  state.config.raceId = null; // the deep link is used once
  const race = wanted ?? live?.raceId ?? classRaces()[0]?.raceId;
  state.followLive = wanted === null || wanted === live?.raceId;
  if (race !== undefined) await showRace(race);
  else render();
}

async function showRace(raceId) {
  state.view = "race";
  state.raceId = raceId;
  state.board = null;
  board.clear();
  const known = state.races.get(raceId);
  watchTopic(known?.status === "final" ? null : standingsTopic(raceId));
  render();
  try {
    // The first paint of a race joined mid-way (topics keep no history); MQTT takes over from here.
    const first = await api(`/races/${raceId}/leaderboard`, { limit: BOARD_SIZE });
    if (state.raceId !== raceId || state.view !== "race" || state.board) return;
    remember({ raceId, classId: first.classId, status: first.status });
    applyBoard(boardFromApi(first), false);
    if (first.status === "final") watchTopic(null);
  } catch (error) {
    // A race announced before its first standings are stored: the topic fills the board.
    if (error.status !== 404) notice(`Race ${raceId}: ${error.message}`);
  }
}

async function showAllTime() {
  const classId = state.classId;
  state.view = "alltime";
  state.followLive = false;
  state.raceId = null;
  watchTopic(null);
  board.clear();
  render();
  try {
    const body = await api(`/classes/${classId}/leaderboard`, { limit: BOARD_SIZE });
    if (state.view !== "alltime") return;
    state.board = {
      classId,
      status: "all-time",
      standings: body.standings.map((s) => ({ ...s, note: `race ${s.raceId}` })),
    };
    board.render(state.board.standings, { animate: false });
    render();
  } catch (error) {
    notice(`All-time board of class ${classId}: ${error.message}`);
  }
}

async function searchRacer(racerId) {
  const raceId = state.raceId ?? classRaces()[0]?.raceId;
  if (raceId === undefined) return notice("No race to search in yet.");
  state.followed = racerId;
  board.highlight(racerId);
  aroundBoard.highlight(racerId);
  try {
    const body = await api(`/races/${raceId}/racers/${racerId}`, { around: AROUND });
    notice("");
    state.around = { raceId, racerId, standings: body.neighbours, live: false, final: body.status === "final", at: new Date() };
    if (state.view === "race" && state.board?.raceId === raceId && body.status === "live") updateAroundFromBoard();
    else aroundBoard.render(state.around.standings, { animate: false });
  } catch (error) {
    state.around = null;
    notice(error.status === 404 ? `Racer ${racerId} has no standing in race ${raceId}.` : error.message);
  }
  render();
  if (state.around) {
    $("around").scrollIntoView({ block: "nearest" });
    $("around-title").focus({ preventScroll: true });
  }
}

// While the followed racer is in the live top 50, "around me" follows the live board.
function updateAroundFromBoard() {
  const standings = state.board?.standings ?? [];
  const at = standings.findIndex((s) => s.racerId === state.around.racerId);
  if (at < 0) return;
  state.around.live = true;
  state.around.standings = standings.slice(Math.max(0, at - AROUND), at + AROUND + 1);
  aroundBoard.render(state.around.standings);
}

function boardFromApi(body) {
  const race = state.races.get(body.raceId);
  return {
    raceId: body.raceId,
    classId: body.classId,
    status: body.status,
    racers: race?.racers ?? body.standings.length,
    second: Math.max(0, ...body.standings.map((s) => s.second ?? 0)),
    standings: body.standings,
    receivedAt: performance.now(),
  };
}

const classRaces = () =>
  [...state.races.values()]
    .filter((r) => r.classId === state.classId)
    // Newest first by the time the race was last updated (the API's own order starts the same way).
    .sort((a, b) => String(b.updatedAt ?? "").localeCompare(String(a.updatedAt ?? "")) || b.raceId - a.raceId);

// -- rendering ----------------------------------------------------------------------------------------------

function renderConnection() {
  document.body.dataset.mqtt = state.mqtt;
  const text = { connected: "Live", connecting: "Connecting…", offline: "Offline – reconnecting…" }[state.mqtt];
  const pill = $("connection");
  if (pill.textContent !== text) pill.textContent = text;
}

function renderPickers() {
  const classes = [...new Set([...state.races.values()].map((r) => r.classId))].sort((a, b) => a - b);
  const classPicker = $("class-picker");
  const classOptions = classes.map((c) => [String(c), `Class ${c}`]);
  fillSelect(classPicker, classOptions.length ? classOptions : [["", "waiting for races…"]], String(state.classId ?? ""));
  classPicker.disabled = !classes.length;

  const racePicker = $("race-picker");
  const options = [["live", "Live / latest race"]];
  for (const race of classRaces()) {
    const when = race.updatedAt ? new Date(race.updatedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
    const label = race.status === "live" ? `● live · race ${race.raceId}` : `Race ${race.raceId} · ${when} · ${race.racers ?? "?"} racers`;
    options.push([String(race.raceId), label]);
  }
  const selected = state.view === "race" && !state.followLive ? String(state.raceId) : state.view === "alltime" ? "" : "live";
  fillSelect(racePicker, state.view === "alltime" ? [["", "—"], ...options] : options, selected);
  racePicker.disabled = state.classId === null;
  $("alltime").disabled = state.classId === null;
  $("alltime").setAttribute("aria-pressed", String(state.view === "alltime"));
}

// Rebuild a <select> only when its options change, so an open picker is not yanked away.
function fillSelect(select, options, value) {
  const signature = JSON.stringify(options);
  if (select.dataset.options !== signature) {
    select.replaceChildren(...options.map(([v, text]) => new Option(text, v)));
    select.dataset.options = signature;
  }
  if (select.value !== value) select.value = value;
}

function formatClock(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–:––";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function renderClock() {
  const b = state.board;
  let seconds = null;
  if (state.view === "race" && b && b.second !== null && b.second !== undefined) {
    seconds = b.second;
    if (b.status === "live" && b.receivedAt) seconds += Math.min(CLOCK_AHEAD_S, (performance.now() - b.receivedAt) / 1000);
  }
  const text = formatClock(seconds);
  const clock = $("clock");
  if (clock.textContent !== text) clock.textContent = text;
}

function render() {
  const b = state.board;
  const body = document.body;
  body.dataset.view = state.view;
  body.dataset.raceId = state.raceId ?? "";
  body.dataset.status = b?.status ?? "";
  body.dataset.updates = String(state.updates);
  let title = "Waiting for a race";
  if (state.view === "race") {
    const final = b?.status === "final";
    title = `${final ? "Final results" : "Live"} · race ${state.raceId} · class ${b?.classId ?? state.classId}`;
  } else if (state.view === "alltime") {
    title = `All-time bests · class ${state.classId}`;
  }
  document.title = `${title} · Alleycat`;
  setText($("board-title"), title);
  const status = $("race-status");
  setText(status, b?.status ?? "–");
  status.dataset.status = b?.status ?? "";
  setText($("racers"), b?.racers !== undefined ? String(b.racers) : state.view === "alltime" ? String(b?.standings.length ?? "–") : "–");
  setText($("last-column"), state.view === "alltime" ? "Set in" : "Last s");
  $("board-empty").hidden = Boolean(b?.standings?.length);
  const around = state.around;
  $("around").hidden = !around;
  if (around) {
    setText($("around-title"), `Around racer ${around.racerId} · race ${around.raceId}`);
    const note = around.live ? "Follows the live standings." : around.final ? "Final results." : `As of ${around.at.toLocaleTimeString()}.`;
    setText($("around-note"), note);
  }
  renderClock();
  renderPickers();
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

// -- start ------------------------------------------------------------------------------------------------

async function start() {
  board = new StandingsBoard($("board"), (racerId) => {
    $("racer-id").value = String(racerId);
    searchRacer(racerId);
  });
  aroundBoard = new StandingsBoard($("around-board"), (racerId) => searchRacer(racerId));
  announcer = new Announcer($("announcer"));
  state.config = await loadConfig();
  $("api-link").href = `${state.config.apiUrl}/openapi.json`;

  $("class-picker").addEventListener("change", (e) => {
    state.followLive = true;
    selectClass(Number(e.target.value));
  });
  $("race-picker").addEventListener("change", (e) => {
    const value = e.target.value;
    if (value === "live") {
      state.followLive = true;
      const live = classRaces().find((r) => r.status === "live") ?? classRaces()[0];
      if (live) showRace(live.raceId);
    } else if (value) {
      state.followLive = false;
      showRace(Number(value));
    }
  });
  $("alltime").addEventListener("click", () => showAllTime());
  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const racerId = Number($("racer-id").value);
    if (Number.isInteger(racerId) && racerId >= 0) searchRacer(racerId);
  });
  setInterval(() => {
    renderClock();
    board.expireMarks();
    aroundBoard.expireMarks();
  }, 250);

  if (!state.config.mqttUrl || !state.config.apiUrl) {
    notice("No configuration: serve config.json next to the page, or pass ?api=…&mqtt=… in the URL.");
    return;
  }
  connectMqtt().catch((error) => {
    state.mqtt = "offline";
    renderConnection();
    notice(`Live updates are unavailable: ${error.message}`);
  });
  try {
    const { races } = await api("/races", { limit: 100 });
    races.forEach(remember);
  } catch (error) {
    notice(`Races: ${error.message}`);
  }
  const classes = [...new Set([...state.races.values()].map((r) => r.classId))];
  const liveClass = [...state.races.values()].find((r) => r.status === "live")?.classId;
  const first = state.config.classId ?? liveClass ?? classes.sort((a, b) => a - b)[0];
  if (first !== undefined) await selectClass(first);
  else render(); // nothing yet: the class announcements will bring the first race
}

start().catch((error) => {
  console.error(error);
  notice(`The page failed to start: ${error.message}`);
});
