// The seat-map page of boxoffice: plain JavaScript, no framework, no build step, no CDN.
//
// The map stays live by polling GET sessions/{id}/seats about once a second with If-None-Match:
// while nothing changed the server answers 304 with no body, from its cache, so a page left open
// costs a few hundred bytes a second. Every URL is relative to the page, so the page works at the
// root of a server and under an API Gateway stage prefix alike. Text from the API only ever
// becomes text nodes (the Content-Security-Policy enforces Trusted Types: no HTML strings).

const POLL_MS = 1000;
const HIDDEN_POLL_MS = 5000; // a tab in the background still notices changes, more slowly
const STATS_MS = 2000;
const TICK_MS = 250;
const URGENT_SECONDS = 10;
const AUTH_KEY = "boxoffice.auth";
const holdKeyOf = (sessionId) => `boxoffice.hold.${sessionId}`;

function metaNumber(name, fallback) {
  const value = Number(document.querySelector(`meta[name="boxoffice:${name}"]`)?.content);
  return Number.isFinite(value) ? value : fallback;
}

const SEATS_PER_CUSTOMER = metaNumber("seats-per-customer", 10); // 0: no cap
const SEATS_PER_HOLD = metaNumber("seats-per-hold", 10);
const HOLD_SECONDS = metaNumber("hold-seconds", 30);
const PICK_LIMIT =
  SEATS_PER_CUSTOMER > 0 ? Math.min(SEATS_PER_CUSTOMER, SEATS_PER_HOLD) : SEATS_PER_HOLD;
const STATUS_WORDS = { AVAILABLE: "available", RESERVED: "reserved", SOLD: "sold" };

const state = {
  auth: null, // {token, name, role}
  sessionId: null,
  session: null,
  etag: null,
  statuses: new Map(), // label -> status
  order: new Map(), // label -> position on the map, for listing seats in map order
  picked: new Set(),
  hold: null, // {id, seats, expiresAt, amount, payKey}
  pendingHold: null, // {key, body}: reused if the same hold is retried after a network failure
  busy: null, // "hold" | "pay" | "cancel" while that request is in flight
  live: null,
};

// --- small helpers ---------------------------------------------------------------------------

const byId = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

const moneyFormat = new Intl.NumberFormat(undefined, {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const money = (cents) => moneyFormat.format(cents / 100);
const whenFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const when = (iso) => whenFormat.format(new Date(iso));
const plural = (n, one, many) => (n === 1 ? one : many);

function listOf(items) {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

function seatsPhrase(labels) {
  return `${plural(labels.length, "Seat", "Seats")} ${listOf(labels)}`;
}

function inMapOrder(labels) {
  return [...labels].sort((a, b) => (state.order.get(a) ?? 0) - (state.order.get(b) ?? 0));
}

function randomKey() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const storage = {
  get(key) {
    try {
      return JSON.parse(sessionStorage.getItem(key));
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, JSON.stringify(value));
    } catch {
      // storage full or disabled: the page still works, it just forgets on reload
    }
  },
};

function tokenClaims(token) {
  // For display only (the role, the expiry): the server checks every token itself.
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
  } catch {
    return {};
  }
}

// --- the API ---------------------------------------------------------------------------------

const apiBase = new URL(".", window.location.href);
let clockSkewMs = 0; // server clock minus ours, when they differ by more than the Date header shows

class ApiError extends Error {
  constructor(status, code, message, body = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

function noteServerClock(response) {
  const serverDate = Date.parse(response.headers.get("Date") ?? "");
  if (Number.isNaN(serverDate)) return;
  const skew = serverDate - Date.now();
  clockSkewMs = Math.abs(skew) > 1500 ? skew : 0; // the header has whole seconds only
}

const serverNow = () => Date.now() + clockSkewMs;

async function api(method, path, { body, headers = {}, auth = true } = {}) {
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  if (auth && state.auth) sent.Authorization = `Bearer ${state.auth.token}`;
  let response;
  try {
    response = await fetch(new URL(path, apiBase), {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", // the page does its own revalidation (If-None-Match)
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, "NetworkError", "the request did not reach the server");
  }
  noteServerClock(response);
  if (response.status === 304) return { status: 304, body: null, response };
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const error = new ApiError(
      response.status,
      parsed?.Code ?? `HTTP${response.status}`,
      parsed?.Message ?? "",
      parsed ?? {},
      Number(response.headers.get("Retry-After")) || null,
    );
    if (error.code === "Unauthorized" && auth && state.auth) {
      signOut();
      error.expiredSignIn = true;
    }
    throw error;
  }
  return { status: response.status, body: parsed, response };
}

function seatsTaken(labels) {
  return (
    `${seatsPhrase(labels)} ${plural(labels.length, "is", "are")} no longer available: ` +
    `someone else has just taken ${plural(labels.length, "it", "them")}. Pick other seats.`
  );
}

function plainWords(error, action) {
  const seats = Array.isArray(error.body?.seats) ? error.body.seats : [];
  switch (error.code) {
    case "SeatUnavailable":
      return seats.length
        ? seatsTaken(seats)
        : "Some of those seats are no longer available. Pick other seats.";
    case "HoldExpired":
      return "Your hold ran out before it was paid, so the seats went back on sale. Pick them again if they are still free.";
    case "HoldLimitReached": {
      const limit = Number(error.body?.limit) || SEATS_PER_CUSTOMER;
      const held = error.body?.held_seats;
      const count = Array.isArray(held) ? held.length : Number.isFinite(held) ? held : null;
      const already = count === null ? "" : ` You already have ${count}.`;
      return `You can have at most ${limit} seats of this session, held and bought together.${already} Pick fewer seats.`;
    }
    case "RateLimited": {
      const seconds = error.retryAfter ?? 1;
      return `Too many requests just now. Please wait ${seconds} ${plural(seconds, "second", "seconds")} and try again.`;
    }
    case "Unauthorized":
      return action === "login"
        ? "That email and password do not match an account."
        : "Your sign-in has expired. Please log in again.";
    case "Forbidden":
      return "This account cannot do that: buying seats needs a customer account.";
    case "Conflict":
      return "An account with this email already exists. Log in instead.";
    case "ValidationError":
      return action === "signup" || action === "login"
        ? "Please check the form: a valid email, and a password of 8 to 128 characters."
        : "The box office could not accept that request. Please reload the page and try again.";
    case "NotFound":
      return action === "session"
        ? "This session does not exist. It may have been removed."
        : "That reservation no longer exists.";
    case "InvalidState":
      return action === "hold"
        ? "This session has already started, so its seats are no longer on sale."
        : "This hold can no longer be changed: it was already cancelled or paid.";
    case "ServiceUnavailable":
      return "The box office is briefly unavailable. Please try again in a moment.";
    case "IdempotencyKeyInProgress":
      return "Your previous request is still being processed. Please wait a moment.";
    case "NetworkError":
      return "The box office could not be reached. Check your connection and try again.";
    default:
      return "Something went wrong. Please try again.";
  }
}

// --- messages --------------------------------------------------------------------------------

function showAlert(text) {
  byId("notice").textContent = "";
  byId("alert").textContent = text;
}

function showError(error, action) {
  showAlert(plainWords(error, action));
}

function showNotice(text) {
  byId("alert").textContent = "";
  byId("notice").textContent = text;
}

function clearMessages() {
  byId("alert").textContent = "";
  byId("notice").textContent = "";
}

// --- signing in ------------------------------------------------------------------------------

const isManager = () => state.auth?.role === "MANAGER";

function loadAuth() {
  const auth = storage.get(AUTH_KEY);
  if (!auth?.token) return null;
  const { exp } = tokenClaims(auth.token);
  if (typeof exp === "number" && exp * 1000 <= Date.now()) {
    storage.set(AUTH_KEY, null);
    return null;
  }
  return auth;
}

function signIn(auth) {
  state.auth = auth;
  storage.set(AUTH_KEY, auth);
  renderAccount();
  renderBasket();
  loadPurchases();
  pollStats();
}

function signOut() {
  state.auth = null;
  storage.set(AUTH_KEY, null);
  if (state.hold) endHold({ forget: true });
  renderAccount();
  renderBasket();
}

let authMode = "login";

function setAuthMode(mode) {
  authMode = mode;
  const signup = mode === "signup";
  for (const button of document.querySelectorAll("[data-mode]")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
  const nameField = byId("name-field");
  const nameInput = nameField.querySelector("input");
  nameField.hidden = !signup;
  nameInput.disabled = !signup;
  nameInput.required = signup;
  byId("auth-form").elements.password.autocomplete = signup ? "new-password" : "current-password";
  byId("auth-submit").textContent = signup ? "Create account" : "Log in";
  byId("account-title").textContent = signup ? "Create an account" : "Log in to buy";
}

async function submitAuth(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const fields = form.elements;
  const email = fields.email.value.trim();
  const password = fields.password.value;
  const submit = byId("auth-submit");
  submit.disabled = true;
  try {
    if (authMode === "signup") {
      const name = fields.name.value.trim();
      const { body } = await api("POST", "auth/signup", {
        body: { email, password, name },
        auth: false,
      });
      signIn({ token: body.token, name: body.user.name, role: body.user.role });
      showNotice(`Welcome, ${body.user.name}. Your account is ready.`);
    } else {
      const { body } = await api("POST", "auth/login", { body: { email, password }, auth: false });
      const role = tokenClaims(body.token).role === "MANAGER" ? "MANAGER" : "CUSTOMER";
      signIn({ token: body.token, name: email, role });
      showNotice(`Signed in as ${email}.`);
    }
    form.reset();
  } catch (error) {
    showError(error, authMode);
  } finally {
    submit.disabled = false;
  }
}

function renderAccount() {
  const signedIn = Boolean(state.auth);
  byId("whoami").hidden = !signedIn;
  byId("who").textContent = state.auth?.name ?? "";
  byId("role-badge").hidden = !isManager();
  byId("account").hidden = signedIn;
  byId("purchases").hidden = !signedIn || isManager();
  byId("stats").hidden = !(isManager() && state.sessionId);
}

// --- the sessions list -----------------------------------------------------------------------

let nextCursor = null;

function sessionCard(session) {
  const free = session.available_seats;
  const share = session.total_seats ? free / session.total_seats : 0;
  const fill = el("span");
  fill.style.width = `${Math.round(share * 100)}%`;
  return el(
    "li",
    { className: "session-card" },
    el(
      "a",
      { className: "title", href: `app?session=${encodeURIComponent(session.id)}` },
      session.movie,
    ),
    el("span", { className: "when" }, when(session.starts_at)),
    el("span", {}, `${session.room} · ${money(session.price_cents)} a seat`),
    el("span", { className: "bar", "aria-hidden": "true" }, fill),
    el("span", { className: "free" }, `${free} of ${session.total_seats} seats free`),
    el("span", { className: "cta", "aria-hidden": "true" }, "Choose seats →"),
  );
}

async function loadSessions() {
  const query = nextCursor
    ? `sessions?limit=24&cursor=${encodeURIComponent(nextCursor)}`
    : "sessions?limit=24";
  const more = byId("more-sessions");
  more.disabled = true;
  try {
    const { body } = await api("GET", query);
    byId("session-list").append(...body.items.map(sessionCard));
    nextCursor = body.next_cursor;
    more.hidden = !nextCursor;
    byId("sessions-empty").hidden = byId("session-list").children.length > 0;
  } catch (error) {
    showError(error, "sessions");
  } finally {
    more.disabled = false;
  }
}

function showSessionsList() {
  byId("sessions-view").hidden = false;
  loadSessions();
}

// --- one session: the map --------------------------------------------------------------------

const seatButtons = new Map(); // label -> button
let grid = []; // rows of buttons, for the arrow keys

function seatLabelText(label, status) {
  const mine = status === "RESERVED" && state.hold?.seats.includes(label);
  return `${label}, ${STATUS_WORDS[status] ?? status.toLowerCase()}${mine ? ", held for you" : ""}`;
}

function setAttribute(node, name, value) {
  if (value === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== value) {
    node.setAttribute(name, value);
  }
}

function renderSeat(label) {
  const button = seatButtons.get(label);
  if (!button) return;
  const status = state.statuses.get(label) ?? "AVAILABLE";
  const picked = state.picked.has(label);
  const mine = status === "RESERVED" && Boolean(state.hold?.seats.includes(label));
  setAttribute(button, "data-status", status);
  setAttribute(button, "data-selected", picked ? "true" : null);
  setAttribute(button, "data-mine", mine ? "true" : null);
  setAttribute(button, "aria-pressed", picked ? "true" : "false");
  setAttribute(button, "aria-disabled", status === "AVAILABLE" ? null : "true");
  setAttribute(button, "aria-label", seatLabelText(label, status));
}

function buildMap(seats) {
  const rows = new Map();
  for (const seat of seats) {
    if (!rows.has(seat.row)) rows.set(seat.row, []);
    rows.get(seat.row).push(seat);
  }
  const columns = Math.max(...seats.map((seat) => seat.number));
  const map = byId("seat-map");
  map.style.setProperty("--cols", String(columns));
  seatButtons.clear();
  state.order.clear();
  grid = [];
  const rowElements = [];
  for (const [row, rowSeats] of rows) {
    const buttons = rowSeats.map((seat) => {
      state.order.set(seat.label, state.order.size);
      const button = el(
        "button",
        { type: "button", className: "seat", tabindex: "-1", dataset: { seat: seat.label } },
        el("span", { "aria-hidden": "true" }, String(seat.number)),
      );
      seatButtons.set(seat.label, button);
      return button;
    });
    grid.push(buttons);
    rowElements.push(
      el(
        "div",
        { className: "seat-row", role: "group", "aria-label": `Row ${row}` },
        el("span", { className: "row-label", "aria-hidden": "true" }, row),
        buttons,
        el("span", { className: "row-label", "aria-hidden": "true" }, row),
      ),
    );
  }
  map.replaceChildren(...rowElements);
  if (grid.length && grid[0].length) grid[0][0].tabIndex = 0; // the map is one tab stop
  // Wider than the screen: start at the middle seats, the ones most people want.
  const scroller = map.closest(".map-scroll");
  scroller.scrollLeft = (scroller.scrollWidth - scroller.clientWidth) / 2;
}

function sameLayout(seats) {
  return seats.length === seatButtons.size && seats.every((seat) => seatButtons.has(seat.label));
}

function applySeatMap(seatMap) {
  if (!sameLayout(seatMap.seats)) buildMap(seatMap.seats);
  state.statuses = new Map(seatMap.seats.map((seat) => [seat.label, seat.status]));
  // A picked seat someone else took meanwhile. Not while our own hold is on its way: its seats
  // may already read RESERVED before its answer arrives.
  if (state.busy !== "hold") {
    const lost = inMapOrder([...state.picked].filter((l) => state.statuses.get(l) !== "AVAILABLE"));
    if (lost.length) {
      for (const label of lost) state.picked.delete(label);
      showAlert(seatsTaken(lost));
    }
  }
  for (const label of seatButtons.keys()) renderSeat(label);
  const free = seatMap.seats.filter((seat) => seat.status === "AVAILABLE").length;
  byId("free-count").textContent = `${free} of ${seatMap.seats.length} seats free`;
  renderBasket();
}

function setLive(connected) {
  if (state.live === connected) return;
  state.live = connected;
  const status = byId("live-status");
  status.dataset.state = connected ? "online" : "offline";
  byId("live-text").textContent = connected
    ? "Live: changes show as they happen"
    : "Reconnecting… the map may be out of date";
}

let seatTimer = null;
let seatPollBusy = false;
let seatPollAgain = false;
let seatPollStopped = false;

async function pollSeats() {
  clearTimeout(seatTimer);
  if (seatPollStopped) return;
  if (seatPollBusy) {
    seatPollAgain = true; // poll again as soon as the one in flight returns
    return;
  }
  seatPollBusy = true;
  let delay = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  try {
    const headers = state.etag ? { "If-None-Match": state.etag } : {};
    const path = `sessions/${encodeURIComponent(state.sessionId)}/seats`;
    const { status, body, response } = await api("GET", path, { headers });
    if (status === 200) {
      state.etag = response.headers.get("ETag");
      applySeatMap(body);
    }
    setLive(true);
  } catch (error) {
    if (error.code === "NotFound") seatPollStopped = true;
    if (error.code === "RateLimited") delay = Math.max(delay, (error.retryAfter ?? 1) * 1000);
    setLive(false);
  } finally {
    seatPollBusy = false;
  }
  if (seatPollAgain) {
    seatPollAgain = false;
    delay = 0;
  }
  if (!seatPollStopped) seatTimer = setTimeout(pollSeats, delay);
}

function focusSeat(row, column) {
  const r = Math.max(0, Math.min(grid.length - 1, row));
  const c = Math.max(0, Math.min(grid[r].length - 1, column));
  grid[r][c].focus();
}

function onMapKey(event) {
  const button = event.target.closest("button.seat");
  if (!button) return;
  const row = grid.findIndex((buttons) => buttons.includes(button));
  const column = grid[row].indexOf(button);
  const moves = {
    ArrowLeft: [row, column - 1],
    ArrowRight: [row, column + 1],
    ArrowUp: [row - 1, column],
    ArrowDown: [row + 1, column],
    Home: [row, 0],
    End: [row, grid[row].length - 1],
  };
  const target = moves[event.key];
  if (!target) return;
  event.preventDefault();
  focusSeat(...target);
}

function onMapFocus(event) {
  // Roving tab stop: Tab leaves the map and comes back to the seat last visited.
  const button = event.target.closest("button.seat");
  if (!button) return;
  for (const other of seatButtons.values()) if (other !== button) other.tabIndex = -1;
  button.tabIndex = 0;
}

function onSeatClick(event) {
  const button = event.target.closest("button.seat");
  if (!button) return;
  const label = button.dataset.seat;
  const status = state.statuses.get(label);
  if (isManager()) {
    showNotice("You are signed in as a manager: buying seats needs a customer account.");
    return;
  }
  if (state.hold) {
    showNotice("Pay for or cancel the seats you hold before picking others.");
    return;
  }
  if (state.picked.has(label)) {
    state.picked.delete(label);
  } else if (status !== "AVAILABLE") {
    showNotice(`${label} is ${STATUS_WORDS[status] ?? "not available"}. Pick an available seat.`);
    return;
  } else if (state.picked.size >= PICK_LIMIT) {
    showAlert(`You can pick up to ${PICK_LIMIT} seats at a time.`);
    return;
  } else {
    state.picked.add(label);
  }
  clearMessages();
  renderSeat(label);
  renderBasket();
}

// --- one session: holding, paying, cancelling ------------------------------------------------

let tickTimer = null;

function renderBasket() {
  const basket = byId("basket");
  basket.hidden = !state.sessionId || isManager();
  const holdButton = document.querySelector('[data-action="hold"]');
  const payButton = document.querySelector('[data-action="pay"]');
  const cancelButton = document.querySelector('[data-action="cancel"]');
  const price = state.session?.price_cents ?? 0;
  const hold = state.hold;
  const seats = hold ? hold.seats : inMapOrder(state.picked);
  byId("picked").replaceChildren(...seats.map((label) => el("li", {}, label)));
  if (hold) {
    byId("basket-summary").textContent =
      `${seats.length} ${plural(seats.length, "seat", "seats")} held for you · total ${money(hold.amount)}`;
    payButton.textContent = `Pay ${money(hold.amount)}`;
  } else if (seats.length) {
    byId("basket-summary").textContent =
      `${seats.length} ${plural(seats.length, "seat", "seats")} picked · total ${money(seats.length * price)}`;
  } else {
    byId("basket-summary").textContent =
      `Pick up to ${PICK_LIMIT} seats on the map. A hold keeps them for you for ${HOLD_SECONDS} seconds while you pay.`;
  }
  holdButton.hidden = Boolean(hold);
  holdButton.disabled = seats.length === 0 || state.busy !== null;
  holdButton.textContent = state.busy === "hold" ? "Holding…" : "Hold seats";
  payButton.hidden = !hold;
  payButton.disabled = state.busy !== null;
  cancelButton.hidden = !hold;
  cancelButton.disabled = state.busy !== null;
  byId("hold-line").hidden = !hold;
}

function startHold(reservation) {
  state.hold = {
    id: reservation.id,
    seats: reservation.seats,
    expiresAt: Date.parse(reservation.expires_at),
    amount: reservation.amount_cents,
    payKey: null,
  };
  storage.set(holdKeyOf(state.sessionId), reservation.id);
  const countdown = el("span", { "data-hold-countdown": "" });
  byId("hold-line").replaceChildren(
    el("span", { className: "timer" }, countdown, el("span", { className: "unit" }, " s")),
    el("span", {}, "left to pay. After that the seats go back on sale."),
  );
  tick();
  clearInterval(tickTimer);
  tickTimer = setInterval(tick, TICK_MS);
  for (const label of reservation.seats) renderSeat(label);
  renderBasket();
}

function endHold({ forget = false } = {}) {
  const seats = state.hold?.seats ?? [];
  state.hold = null;
  clearInterval(tickTimer);
  tickTimer = null;
  byId("hold-line").replaceChildren(); // the countdown is gone, not just hidden
  if (state.sessionId) storage.set(holdKeyOf(state.sessionId), null);
  if (!forget) {
    for (const label of seats) renderSeat(label);
    renderBasket();
    pollSeats();
  }
}

function tick() {
  if (!state.hold) return;
  const left = Math.max(0, Math.ceil((state.hold.expiresAt - serverNow()) / 1000));
  const countdown = document.querySelector("[data-hold-countdown]");
  if (countdown) {
    countdown.textContent = String(left);
    countdown.dataset.holdCountdown = String(left);
  }
  byId("hold-line").dataset.urgent = String(left <= URGENT_SECONDS);
  if (left <= 0 && state.busy === null) {
    const seats = state.hold.seats;
    endHold();
    showNotice(
      `Your hold on ${listOf(seats)} ran out, so ${plural(seats.length, "it is", "they are")} on sale again.`,
    );
  }
}

async function holdSeats() {
  if (!state.auth) {
    showAlert("Log in or create an account to hold these seats.");
    byId("auth-form").elements.email.focus();
    return;
  }
  const seats = inMapOrder(state.picked);
  if (!seats.length) return;
  const body = { session_id: state.sessionId, seats };
  const fingerprint = JSON.stringify(body);
  if (state.pendingHold?.fingerprint !== fingerprint) {
    state.pendingHold = { key: randomKey(), fingerprint };
  }
  state.busy = "hold";
  renderBasket();
  try {
    const { body: reservation } = await api("POST", "reservations", {
      body,
      headers: { "Idempotency-Key": state.pendingHold.key },
    });
    state.pendingHold = null;
    state.picked.clear();
    state.busy = null;
    startHold(reservation);
    // The hold button is gone: the next step is paying, so the keyboard goes there.
    document.querySelector('[data-action="pay"]').focus();
    showNotice(
      `${seatsPhrase(reservation.seats)} ${plural(reservation.seats.length, "is", "are")} held for you. Pay before the time runs out.`,
    );
  } catch (error) {
    if (error.code !== "NetworkError") state.pendingHold = null; // an answer: a retry is new
    if (error.code === "SeatUnavailable" && Array.isArray(error.body?.seats)) {
      for (const label of error.body.seats) state.picked.delete(label);
    }
    state.busy = null;
    showError(error, "hold");
  } finally {
    state.busy = null;
    for (const label of seats) renderSeat(label);
    renderBasket();
    pollSeats();
  }
}

// Paying and cancelling both end the hold: on success, and when the server says it is already
// over (ran out, cancelled, paid, gone).
const HOLD_OVER = ["HoldExpired", "InvalidState", "NotFound"];

async function endHoldBy(action, send) {
  const hold = state.hold;
  if (!hold) return null;
  state.busy = action;
  renderBasket();
  try {
    const { body } = await send(hold);
    state.busy = null;
    endHold();
    return body;
  } catch (error) {
    state.busy = null;
    if (HOLD_OVER.includes(error.code)) endHold();
    showError(error, action);
    return null;
  } finally {
    state.busy = null;
    renderBasket();
  }
}

async function payHold() {
  const sale = await endHoldBy("pay", (hold) => {
    hold.payKey ??= randomKey(); // a retry of this payment is the same payment
    return api("POST", `reservations/${hold.id}/payment`, {
      headers: { "Idempotency-Key": hold.payKey },
    });
  });
  if (!sale) return;
  showNotice(
    `Paid ${money(sale.amount_cents)}. ${seatsPhrase(sale.seats)} ${plural(sale.seats.length, "is", "are")} yours. Enjoy the film!`,
  );
  loadPurchases();
}

async function cancelHold() {
  const cancelled = await endHoldBy("cancel", (hold) => api("DELETE", `reservations/${hold.id}`));
  if (!cancelled) return;
  showNotice(
    `Hold cancelled. ${seatsPhrase(cancelled.seats)} ${plural(cancelled.seats.length, "is", "are")} on sale again.`,
  );
}

async function restoreHold() {
  // A reload keeps a live hold: its id is in sessionStorage, its state on the server.
  const id = storage.get(holdKeyOf(state.sessionId));
  if (!id || !state.auth) return;
  try {
    const { body } = await api("GET", `reservations/${encodeURIComponent(id)}`);
    if (body.status === "PENDING" && body.session_id === state.sessionId) startHold(body);
    else storage.set(holdKeyOf(state.sessionId), null);
  } catch {
    storage.set(holdKeyOf(state.sessionId), null);
  }
}

// --- manager's stats, purchases ---------------------------------------------------------------

let statsTimer = null;
let statsBusy = false;

async function pollStats() {
  clearTimeout(statsTimer);
  renderAccount();
  if (!isManager() || !state.sessionId || statsBusy) return;
  statsBusy = true;
  let delay = STATS_MS;
  try {
    const { body } = await api("GET", `sessions/${encodeURIComponent(state.sessionId)}/stats`);
    for (const node of document.querySelectorAll("[data-stat]")) {
      const value = body[node.dataset.stat];
      node.textContent = node.dataset.stat === "revenue_cents" ? money(value) : String(value);
    }
  } catch (error) {
    if (error.code === "RateLimited") delay = Math.max(delay, (error.retryAfter ?? 1) * 1000);
  } finally {
    statsBusy = false;
  }
  if (isManager()) statsTimer = setTimeout(pollStats, delay);
}

function purchaseItem(purchase) {
  return el(
    "li",
    {},
    el("div", { className: "what" }, purchase.movie),
    el("div", { className: "detail" }, `${when(purchase.starts_at)} · ${purchase.room}`),
    el(
      "div",
      { className: "detail" },
      el("span", { className: "seats" }, `${seatsPhrase(purchase.seats)}`),
      ` · ${money(purchase.amount_cents)}`,
    ),
  );
}

async function loadPurchases() {
  if (!state.auth) return;
  try {
    const { body } = await api("GET", "me/purchases");
    byId("purchase-list").replaceChildren(...body.items.map(purchaseItem));
    byId("purchases-empty").hidden = body.items.length > 0;
  } catch (error) {
    if (!error.expiredSignIn) showError(error, "purchases");
  }
}

// --- one session: putting it together ---------------------------------------------------------

function renderFacts(session) {
  byId("movie").textContent = session.movie;
  document.title = `${session.movie} · boxoffice`;
  byId("session-facts").replaceChildren(
    el("span", {}, when(session.starts_at)),
    el("span", {}, session.room),
    el("span", {}, `${money(session.price_cents)} a seat`),
  );
}

async function showSession(sessionId) {
  state.sessionId = sessionId;
  byId("session-view").hidden = false;
  renderAccount();
  renderBasket();
  try {
    const { body } = await api("GET", `sessions/${encodeURIComponent(sessionId)}`);
    state.session = body;
    renderFacts(body);
  } catch (error) {
    if (error.code === "NotFound") {
      byId("movie").textContent = "Session not found";
      byId("session-facts").textContent = "It may have been removed. Pick another session.";
      byId("basket").hidden = true;
      byId("seat-map").closest(".map-card").hidden = true;
      return;
    }
    showError(error, "session");
  }
  renderBasket();
  pollSeats();
  restoreHold();
  pollStats();
}

function start() {
  state.auth = loadAuth();
  setAuthMode("login");
  renderAccount();

  byId("auth-form").addEventListener("submit", submitAuth);
  for (const button of document.querySelectorAll("[data-mode]")) {
    button.addEventListener("click", () => setAuthMode(button.dataset.mode));
  }
  document.querySelector('[data-action="logout"]').addEventListener("click", () => {
    signOut();
    showNotice("You are signed out.");
  });
  document.querySelector('[data-action="hold"]').addEventListener("click", holdSeats);
  document.querySelector('[data-action="pay"]').addEventListener("click", payHold);
  document.querySelector('[data-action="cancel"]').addEventListener("click", cancelHold);
  byId("more-sessions").addEventListener("click", loadSessions);
  const map = byId("seat-map");
  map.addEventListener("click", onSeatClick);
  map.addEventListener("keydown", onMapKey);
  map.addEventListener("focusin", onMapFocus);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.sessionId) pollSeats();
  });

  const sessionId = new URLSearchParams(window.location.search).get("session");
  if (sessionId) showSession(sessionId);
  else showSessionsList();
  loadPurchases();
}

start();
