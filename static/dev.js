// The /dev sandbox chat: talk to the bot as any OpenID, see what it sends back.
//
//   POST /dev/send  {openid, kind, text|key|label}  → {reply: {type: text|card|none|error, …}}
//   GET  /dev/inbox?after=N                          → {items: [{id, channel, to, text, …}]}
//
// The inbox's channels: sms (the 短信 list), wechat (a customer-service message, or a card to
// forward, e.g. the share card once paid), template, and subscription (a one-time subscription
// message: in the person's chat when they follow the account, else in the 服务通知 list).
//   POST /dev/upload  (a picture's or voice's bytes)  → {media_id}, then /dev/send kind image|voice
//
// Bot text is untrusted: it only ever reaches the page through textContent.
//
// A share card (a link to /claim/<token>) carries what a newcomer needs to play the friend:
// 以好友身份打开 (the claim page as a sandbox user who is not the giver), 转发给… (the card
// into another user's chat, as forwarding it in WeChat would) and the 领取 <token> words.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "gift-bot-dev";
const POLL_MS = 2000;
// http(s) links, a claim token (URL-safe base64) after 领取, and what must not break at its
// hyphen: order numbers and delivery windows.
const LINKS = /(https?:\/\/[^\s<>"'，。！？、）)]+)|(领取[ \t]+([A-Za-z0-9_-]{8,64}))|(G\d{6}-[2-9A-Z]{5}|\d{2}:\d{2}-\d{2}:\d{2})/g;
const CLAIM_PATH = /^\/claim\/([A-Za-z0-9_-]{8,64})$/;
const WIDE = "(min-width: 840px)";

const saved = JSON.parse(sessionStorage.getItem(STORE) || "{}");
const histories = new Map(Object.entries(saved.histories || {}));
const sms = saved.sms || [];
const notices = saved.notices || [];
let lastInbox = saved.lastInbox || 0;
let polling = false;

function save() {
  const state = { histories: Object.fromEntries(histories), sms, notices, lastInbox, openid: openid() };
  sessionStorage.setItem(STORE, JSON.stringify(state));
}

const openid = () => $("openid").value.trim() || "dev-giver";
const xsrf = () => document.querySelector('input[name="_xsrf"]')?.value || "";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Links the bot sends point at public_url; open them here, signed in as the chat's user.
function asUser(url) {
  let target;
  try { target = new URL(url, location.href); } catch { return null; }
  const local = target.origin === location.origin || ["127.0.0.1", "localhost", "[::1]"].includes(target.hostname);
  if (!local) return target.href;
  const next = target.pathname + target.search + target.hash;
  return `/dev/as?openid=${encodeURIComponent(openid())}&next=${encodeURIComponent(next)}`;
}

// The sandbox's users, as the quick buttons name them: [{openid, label}].
const users = () =>
  [...document.querySelectorAll(".quick [data-openid]")].map((b) => ({ openid: b.dataset.openid, label: b.textContent.trim() }));
const nameOf = (who) => users().find((u) => u.openid === who)?.label || who;

function sendAsLink(text) {
  const a = el("a", "link", text);
  Object.assign(a, { href: "#", title: "点一下发送这句话" });
  a.addEventListener("click", (event) => {
    event.preventDefault();
    sendText(text);
  });
  return a;
}

function linkify(text) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(LINKS)) {
    frag.append(text.slice(at, m.index));
    at = m.index + m[0].length;
    if (m[4]) {
      frag.append(el("span", "nowrap", m[0]));
      continue;
    }
    if (m[2]) {
      frag.append(sendAsLink(`领取 ${m[3]}`));
      continue;
    }
    const a = el("a", "link", m[0]);
    Object.assign(a, { href: asUser(m[1]) || "#", target: "_blank", rel: "noopener" });
    frag.append(a);
  }
  frag.append(text.slice(at));
  return frag;
}

// The claim token of a share card's link, or null for any other card.
function claimToken(url) {
  try {
    return new URL(url, location.href).pathname.match(CLAIM_PATH)?.[1] || null;
  } catch {
    return null;
  }
}

function card(reply, item) {
  const token = claimToken(reply.url);
  const news = newsCard(reply);
  if (!token) return news;
  const wrap = el("div", "card-wrap");
  wrap.append(news, cardActions(token, item));
  const words = el("p", "card-claim", "在公众号里领取：发送 ");
  words.append(sendAsLink(`领取 ${token}`));
  wrap.append(words);
  return wrap;
}

// The share card's actions: open it as a friend, forward it into another user's chat.
function cardActions(token, item) {
  const giver = item.giver || openid();
  // The chat's own user when the card was forwarded to them; else the first friend.
  const friend = openid() !== giver ? openid() : users().find((u) => u.openid !== giver)?.openid;
  const bar = el("div", "card-actions");
  const open = el("a", "card-action", `以好友身份打开（${nameOf(friend)}）`);
  Object.assign(open, {
    href: `/dev/as?openid=${encodeURIComponent(friend)}&next=${encodeURIComponent(`/claim/${token}`)}`,
    target: "_blank",
    rel: "noopener",
    title: `以 ${friend} 的身份打开领取页`,
  });
  const forward = el("button", "card-action", "转发给…");
  forward.type = "button";
  forward.setAttribute("aria-expanded", "false");
  const menu = el("div", "forward-menu");
  menu.hidden = true;
  menu.setAttribute("role", "group");
  menu.setAttribute("aria-label", "转发给");
  for (const user of users().filter((u) => u.openid !== openid())) {
    const pick = el("button", "", user.label);
    pick.type = "button";
    pick.dataset.forwardTo = user.openid;
    pick.addEventListener("click", () => forwardCard(item, giver, user.openid));
    menu.append(pick);
  }
  forward.addEventListener("click", () => {
    menu.hidden = !menu.hidden;
    forward.setAttribute("aria-expanded", String(!menu.hidden));
  });
  bar.append(open, forward, menu);
  return bar;
}

// As forwarding in WeChat would: the card lands in their chat, from the giver; then that chat.
function forwardCard(item, giver, to) {
  add(openid(), { from: "event", text: `已把卡片转发给 ${nameOf(to)}` });
  add(to, { from: "bot", label: `${nameOf(openid())} 转发的卡片`, giver, reply: item.reply });
  $("openid").value = to;
  redraw();
}

function newsCard(reply) {
  const a = el("a", "news");
  Object.assign(a, { href: asUser(reply.url) || "#", target: "_blank", rel: "noopener" });
  a.append(el("p", "news-title", reply.title || ""));
  if (reply.picurl) {
    const img = el("img", "news-pic");
    const pic = new URL(reply.picurl, location.href);
    // Same-site pictures by path, so the page's CSP (img-src 'self' https:) lets them in.
    img.src = pic.protocol === "https:" ? pic.href : pic.pathname + pic.search;
    img.alt = "";
    a.append(img);
  }
  if (reply.description) a.append(el("p", "news-desc", reply.description));
  return a;
}

function render(item) {
  const li = el("li", `msg ${item.from}`);
  if (item.from === "event") {
    li.append(el("span", "event-note", item.text));
    return li;
  }
  if (item.from === "me") {
    li.append(el("div", "bubble", item.text));
    return li;
  }
  const reply = item.reply || { type: "none" };
  if (item.label) li.append(el("span", "msg-label", item.label));
  if (reply.type === "text") {
    const bubble = el("div", "bubble");
    if (reply.title) bubble.append(el("span", "bubble-title", reply.title));
    bubble.append(linkify(reply.content || ""));
    li.append(bubble);
  } else if (reply.type === "transfer") {
    li.className = "msg event";
    li.append(el("span", "event-note", "已转人工：微信客服接管了这段对话（沙盒里没有客服在线）"));
  } else if (reply.type === "card") {
    li.append(card(reply, item));
  } else if (reply.type === "error") {
    li.className = "msg event";
    li.append(el("span", "event-note error", `出错了：${reply.content || "未知错误"}`));
  } else {
    li.className = "msg event";
    li.append(el("span", "event-note", "（机器人没有回复）"));
  }
  if (reply.dropped) {
    // What WeChat would refuse: on a real account nobody would see this reply.
    li.append(el("p", "dropped", `微信会丢弃这条回复：${reply.dropped.join("；")}`));
  }
  return li;
}

function add(who, item) {
  if (!histories.has(who)) histories.set(who, []);
  histories.get(who).push(item);
  save();
  if (who === openid()) {
    $("messages").append(render(item));
    scrollDown();
  }
}

function redraw() {
  $("messages").replaceChildren(...(histories.get(openid()) || []).map(render));
  for (const button of document.querySelectorAll("[data-openid]")) {
    button.classList.toggle("active", button.dataset.openid === openid());
  }
  scrollDown();
  save();
}

const scrollDown = () => ($("messages").scrollTop = $("messages").scrollHeight);

async function send(payload, echo) {
  const who = openid();
  add(who, echo);
  let reply;
  try {
    const response = await fetch("/dev/send", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf() },
      body: JSON.stringify({ openid: who, ...payload }),
    });
    reply = response.ok ? (await response.json()).reply : { type: "error", content: `HTTP ${response.status}` };
  } catch (error) {
    reply = { type: "error", content: `连不上服务器（${error.message}）` };
  }
  add(who, { from: "bot", reply });
  poll();
}

function sendText(text) {
  if (text.trim()) send({ kind: "text", text }, { from: "me", text });
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    const response = await fetch(`/dev/inbox?after=${lastInbox}`, { cache: "no-store" });
    if (response.ok) {
      for (const item of (await response.json()).items || []) {
        lastInbox = Math.max(lastInbox, item.id);
        if (item.channel === "sms") {
          sms.push(item);
          showSms(item);
        } else if (item.channel === "wechat" && item.card) {
          // A card to forward (the share card once paid): the same card 确认 gives, buttons too.
          const reply = { type: "card", ...item.card };
          add(item.to, { from: "bot", label: "客服消息", giver: item.to, reply });
        } else if (item.channel === "wechat" || item.channel === "template") {
          const label = item.channel === "wechat" ? "客服消息" : "模板消息";
          add(item.to, { from: "bot", label, reply: { type: "text", content: item.text } });
        } else if (item.channel === "subscription" && item.follower) {
          const reply = { type: "text", title: item.title, content: item.text };
          add(item.to, { from: "bot", label: "订阅消息", reply });
        } else if (item.channel === "subscription") {
          notices.push(item);
          showNotice(item);
        }
      }
      save();
    }
  } catch {
    // The server may be restarting; the next tick tries again.
  } finally {
    polling = false;
  }
}

function showSms(item) {
  const li = el("li", "sms-item");
  const text = el("p", "sms-text");
  text.append(linkify(item.text));
  li.append(el("p", "sms-to", `发给 ${item.to}`), text);
  $("sms").prepend(li);
  $("sms-count").textContent = String(sms.length + notices.length);
  $("sms-count").classList.toggle("new", true);
}

// A one-time subscription message to someone who does not follow: WeChat's 服务通知.
function showNotice(item) {
  const li = el("li", "sms-item notify-item");
  const text = el("p", "sms-text");
  text.append(linkify(item.text));
  li.append(el("p", "sms-to", `服务通知 · 给 ${nameOf(item.to)}`), el("p", "notify-head", item.title || "订阅消息"), text);
  $("notify").prepend(li);
  $("sms-count").textContent = String(sms.length + notices.length);
  $("sms-count").classList.toggle("new", true);
}

const scene = () => $("scene").value.trim().replace(/^领取\s*/, "");
const PICTURE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
const VOICE_SAMPLE = "/static/dev/greeting.amr"; // 5 s of AMR-NB, as WeChat keeps a voice

// A file as WeChat keeps what a user sends: its media_id, or null when the upload failed.
async function upload(body, type) {
  try {
    const response = await fetch("/dev/upload", {
      method: "POST",
      headers: { "Content-Type": type, "X-XSRFToken": xsrf() },
      body,
    });
    return response.ok ? (await response.json()).media_id : null;
  } catch {
    return null;
  }
}

async function sendPicture(file) {
  // Anything but the four kinds goes as it is: the bot's checks say why it cannot be shown.
  const id = await upload(file, PICTURE_TYPES.includes(file.type) ? file.type : "application/octet-stream");
  if (!id) return add(openid(), { from: "event", text: `图片没能上传：${file.name}` });
  send({ kind: "image", media_id: id }, { from: "me", text: `🖼 图片：${file.name}` });
}

async function sendVoice() {
  const sample = await fetch(VOICE_SAMPLE).then((r) => r.blob()).catch(() => null);
  const id = sample && (await upload(sample, "audio/amr"));
  if (!id) return add(openid(), { from: "event", text: "语音没能上传" });
  const words = $("voice-words").value.trim();
  send({ kind: "voice", media_id: id, text: words }, { from: "me", text: `🎙 语音${words ? `：${words}` : "（未识别出文字）"}` });
}

function wire() {
  if (saved.openid) $("openid").value = saved.openid;
  sms.forEach(showSms);
  notices.forEach(showNotice);
  $("sms-count").classList.remove("new");
  $("events").open = matchMedia(WIDE).matches; // folded on a phone: the chat gets the room
  document.querySelector(".sms-jump").addEventListener("click", () => $("sms-count").classList.remove("new"));
  $("openid").addEventListener("change", redraw);
  for (const button of document.querySelectorAll("[data-openid]")) {
    button.addEventListener("click", () => {
      $("openid").value = button.dataset.openid;
      redraw();
    });
  }
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    sendText($("text").value);
    $("text").value = "";
    $("text").focus();
  });
  for (const parent of document.querySelectorAll(".menu-parent")) {
    parent.addEventListener("click", () => {
      const sub = parent.nextElementSibling;
      for (const other of document.querySelectorAll(".submenu")) if (other !== sub) other.hidden = true;
      sub.hidden = !sub.hidden;
    });
  }
  for (const button of document.querySelectorAll(".menubar [data-type]")) {
    button.addEventListener("click", () => {
      button.closest(".submenu")?.setAttribute("hidden", "");
      if (button.dataset.type === "view" && button.dataset.url) {
        window.open(asUser(button.dataset.url), "_blank", "noopener");
        return;
      }
      const key = button.dataset.key;
      send({ kind: "click", key }, { from: "event", text: `点击菜单「${button.textContent.trim()}」(${key})` });
    });
  }
  $("subscribe").addEventListener("click", () => {
    const key = scene();
    send({ kind: "subscribe", key }, { from: "event", text: key ? `扫码关注（场景 ${key}）` : "关注公众号" });
  });
  $("scan").addEventListener("click", () => {
    const key = scene();
    if (!key) {
      $("scene").focus();
      $("scene").placeholder = "先填领取 token";
      return;
    }
    send({ kind: "scan", key }, { from: "event", text: `扫码领取（场景 ${key}）` });
  });
  $("picture").addEventListener("change", () => {
    const file = $("picture").files[0];
    $("picture").value = "";
    if (file) sendPicture(file);
  });
  $("voice").addEventListener("click", sendVoice);
  $("location").addEventListener("click", () => {
    const label = $("place").value.trim();
    send({ kind: "location", label }, { from: "event", text: `发送位置：${label || "（无名称）"}` });
  });
  redraw();
  poll();
  setInterval(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", wire);
