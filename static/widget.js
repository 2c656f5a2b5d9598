/*! Frontdesk chat widget. Embed with one tag:
 *   <script src="https://support.example.com/widget.js" async
 *           data-title="Help" data-color="#1f6f5c"></script>
 * Optional: data-server (defaults to where this script came from),
 * data-subtitle, data-open="true". A site that has signed its customer in
 * adds data-customer-id, data-customer-email and data-customer-signature
 * (hex HMAC-SHA256 of "id\nemail" under the shop's identity secret).
 * Protocol: docs/protocol.md.
 */
(() => {
  'use strict';
  if (window.__frontdeskWidget) return;
  window.__frontdeskWidget = true;

  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const origin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  const server = (data.server || origin).replace(/\/$/, '');
  const title = data.title || 'Customer service';
  const subtitle = data.subtitle || 'Our assistant answers right away; a person is a click away.';
  const color = /^#[0-9a-f]{3,8}$|^[a-z]+$/i.test(data.color || '') ? data.color : '#1f6f5c';

  // Everything the widget remembers survives a reload: the session, what
  // was said (so the page shows it before the socket is back), and messages
  // not yet acknowledged (resent with the same id, which the server dedupes).
  const storageKey = 'frontdesk:' + server + ':';
  const saved = (k, fallback) => {
    try { const v = JSON.parse(localStorage.getItem(storageKey + k)); return v == null ? fallback : v; } catch (_) { return fallback; }
  };
  const save = (k, v) => { try { localStorage.setItem(storageKey + k, JSON.stringify(v)); } catch (_) { /* private mode */ } };
  const KEEP = 200;

  const identity = data.customerId && data.customerEmail && data.customerSignature
    ? {customer_id: data.customerId, email: data.customerEmail, signature: data.customerSignature}
    : null;
  if (saved('customer', null) !== (identity && identity.customer_id)) {
    // Another customer (or none) on this browser: their chat is not shown.
    ['session', 'messages', 'pending', 'handler', 'intro', 'visitor'].forEach((k) => { try { localStorage.removeItem(storageKey + k); } catch (_) { /* private mode */ } });
    save('customer', identity && identity.customer_id);
  }
  // A random id for this browser, so an anonymous customer's conversations
  // make one profile in the console; a new one when the signed-in customer
  // changes. (crypto.randomUUID needs https; getRandomValues does not.)
  const newVisitorId = () => {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  };
  const visitorId = saved('visitor', null) || newVisitorId();
  save('visitor', visitorId);
  let sessionId = saved('session', null);
  let messages = saved('messages', []);   // stored messages by seq: {seq, role, text, citations, agent, event, id}
  let pending = saved('pending', []);     // {id, text}: sent, not yet acknowledged
  let handler = saved('handler', {status: 'bot', agent: null});
  let isOpen = saved('open', data.open === 'true');
  let intro = saved('intro', null);         // {greeting, suggestions} from the server's welcome
  let ws = null, attempts = 0, retryTimer = null, countdownTimer = null, agentTypingTimer = null;
  const drafts = new Map();                // reply_id -> element being streamed

  const host = document.createElement('div');
  host.id = 'frontdesk-widget';
  const root = host.attachShadow({mode: 'open'});
  root.innerHTML = `
<style>
  :host { all: initial; }
  * { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  .launcher { position: fixed; right: 20px; bottom: 20px; width: 60px; height: 60px; border-radius: 50%; border: 0;
    background: var(--accent); color: #fff; cursor: pointer; box-shadow: 0 6px 20px rgb(0 0 0 / .25); z-index: 2147483000;
    display: grid; place-items: center; transition: transform .15s; }
  .launcher:hover { transform: scale(1.05); }
  .launcher:focus-visible, button:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
  .launcher svg { width: 28px; height: 28px; }
  .panel { position: fixed; right: 20px; bottom: 92px; width: 380px; height: min(620px, calc(100vh - 120px));
    background: #f7f7f5; border-radius: 16px; box-shadow: 0 12px 40px rgb(0 0 0 / .22); display: none;
    flex-direction: column; overflow: hidden; z-index: 2147483000; color: #1f2937; font-size: 15px; line-height: 1.45; }
  .panel.open { display: flex; }
  header { background: var(--accent); color: #fff; padding: 14px 16px; display: flex; gap: 10px; align-items: flex-start; }
  header .who { flex: 1; min-width: 0; }
  header h2 { margin: 0; font-size: 16px; font-weight: 650; }
  header p { margin: 2px 0 0; font-size: 12.5px; opacity: .9; }
  header button { background: rgb(255 255 255 / .16); color: #fff; border: 0; border-radius: 8px; padding: 6px 9px; cursor: pointer; font-size: 12.5px; }
  header button:hover { background: rgb(255 255 255 / .28); }
  .banner { display: none; padding: 8px 14px; font-size: 13px; background: #fef3c7; color: #78350f; border-bottom: 1px solid #fde68a; }
  .banner.show { display: flex; gap: 8px; align-items: center; justify-content: space-between; }
  .banner button { border: 0; background: none; color: #78350f; text-decoration: underline; cursor: pointer; font-size: 13px; }
  .log { position: relative; flex: 1; overflow-y: auto; padding: 16px 14px; display: flex; flex-direction: column; gap: 8px; }
  .rate { align-self: center; background: #fff; border: 1px solid #e7e5e4; border-radius: 12px; padding: 8px 12px; text-align: center; font-size: 13.5px; display: flex; flex-direction: column; gap: 6px; }
  .rate .stars button { font-size: 24px; line-height: 1; background: none; border: 0; color: #d6d3d1; cursor: pointer; padding: 0 2px; }
  .rate .stars button:hover, .rate .stars button:focus-visible { color: #f59e0b; }
  .rate .stars:hover button { color: #f59e0b; }
  .rate .stars button:hover ~ button { color: #d6d3d1; }
  .rate input { font: inherit; border: 1px solid #e7e5e4; border-radius: 8px; padding: 4px 8px; }
  .chips { display: flex; flex-wrap: wrap; gap: 6px; align-self: flex-start; max-width: 92%; }
  .chips button { border: 1px solid var(--accent); color: var(--accent); background: #fff; border-radius: 999px;
    padding: 6px 12px; font-size: 13.5px; cursor: pointer; text-align: left; }
  .chips button:hover { background: var(--accent); color: #fff; }
  .msg { max-width: 82%; padding: 9px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; box-shadow: 0 1px 2px rgb(0 0 0 / .07); }
  .customer { align-self: flex-end; background: var(--accent); color: #fff; border-bottom-right-radius: 4px; }
  .customer.pending { opacity: .65; }
  .bot, .agent { align-self: flex-start; background: #fff; border-bottom-left-radius: 4px; }
  .agent { border-left: 3px solid var(--accent); }
  .author { display: block; font-size: 11.5px; font-weight: 600; color: #6b7280; margin-bottom: 2px; }
  .streaming::after { content: "▍"; animation: blink 1s steps(2) infinite; }
  @keyframes blink { 50% { opacity: 0; } }
  .sources { margin-top: 6px; font-size: 12.5px; color: #4b5563; }
  .sources a { color: var(--accent); font-weight: 550; }
  .event { align-self: center; font-size: 12.5px; color: #4b5563; background: #e7e5e4; padding: 4px 10px; border-radius: 999px; }
  .note { align-self: center; font-size: 12.5px; color: #92400e; }
  .typing { align-self: flex-start; display: none; gap: 6px; align-items: center; font-size: 12.5px; color: #6b7280; padding: 4px 2px; }
  .typing.show { display: flex; }
  .dots span { display: inline-block; width: 6px; height: 6px; margin-right: 3px; border-radius: 50%; background: #9ca3af; animation: bounce 1.2s infinite; }
  .dots span:nth-child(2) { animation-delay: .15s; } .dots span:nth-child(3) { animation-delay: .3s; }
  @keyframes bounce { 0%, 60%, 100% { transform: translateY(0); } 30% { transform: translateY(-4px); } }
  form { display: flex; gap: 8px; padding: 10px; background: #fff; border-top: 1px solid #e5e7eb; align-items: flex-end; }
  textarea { flex: 1; resize: none; border: 1px solid #d1d5db; border-radius: 10px; padding: 9px 11px; font-size: 15px; max-height: 120px; color: inherit; background: #fff; }
  .send { border: 0; background: var(--accent); color: #fff; border-radius: 10px; padding: 9px 14px; font-size: 15px; cursor: pointer; }
  .send:disabled { opacity: .5; cursor: default; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  @media (max-width: 480px) {
    .panel { inset: 0; width: auto; height: auto; border-radius: 0; }
    .panel.open ~ .launcher { display: none; }
  }
  @media (prefers-reduced-motion: reduce) { * { animation: none !important; transition: none !important; } }
</style>
<div class="panel" role="dialog" aria-modal="false" aria-labelledby="fd-title" id="fd-panel">
  <header>
    <div class="who"><h2 id="fd-title"></h2><p id="fd-status"></p></div>
    <button type="button" id="fd-human">Talk to a person</button>
    <button type="button" id="fd-close" aria-label="Close chat">✕</button>
  </header>
  <div class="banner" id="fd-banner" role="status"><span id="fd-banner-text"></span><button type="button" id="fd-retry">Retry now</button></div>
  <div class="log" id="fd-log" role="log" aria-live="polite" aria-relevant="additions text"></div>
  <div class="typing" id="fd-typing" aria-live="polite"><span class="dots" aria-hidden="true"><span></span><span></span><span></span></span><span id="fd-typing-text"></span></div>
  <form id="fd-form">
    <label class="sr-only" for="fd-input">Your message</label>
    <textarea id="fd-input" rows="1" maxlength="4000" placeholder="Type your question…" autocomplete="off"></textarea>
    <button class="send" id="fd-send" type="submit">Send</button>
  </form>
</div>
<button class="launcher" id="fd-launcher" type="button" aria-controls="fd-panel" aria-expanded="false" aria-label="Open chat">
  <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/></svg>
</button>`;
  root.host.style.setProperty('--accent', color);
  const $ = (id) => root.getElementById(id);
  const panel = $('fd-panel'), log = $('fd-log'), input = $('fd-input'), launcher = $('fd-launcher');
  const typing = $('fd-typing'), typingText = $('fd-typing-text');
  $('fd-title').textContent = title;

  function persist() {
    if (messages.length > KEEP) messages = messages.slice(-KEEP);
    save('messages', messages); save('pending', pending); save('handler', handler);
  }
  const lastSeq = () => messages.reduce((m, x) => Math.max(m, x.seq), 0);

  function showStatus() {
    $('fd-status').textContent = handler.status === 'agent' && handler.agent
      ? `You're chatting with ${handler.agent} from our team`
      : subtitle;
    $('fd-human').hidden = handler.status === 'agent';
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  /** Shows a finished reply whole: its top when it is taller than the log, else the bottom. */
  function reveal(el) {
    if (!el) return scroll();
    if (el.offsetHeight > log.clientHeight) log.scrollTop = Math.max(0, el.offsetTop - 8);
    else scroll();
  }

  /** Buttons that send their label: suggested questions, or answers to the bot's offer. */
  function chips(labels, kind) {
    log.querySelectorAll('.chips').forEach((c) => c.remove());
    if (!labels || !labels.length) return;
    const box = document.createElement('div');
    box.className = 'chips'; box.dataset.kind = kind;
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', kind === 'suggestions' ? 'Suggested questions' : 'Quick replies');
    labels.forEach((label) => {
      const b = document.createElement('button');
      b.type = 'button'; b.textContent = label;
      b.addEventListener('click', () => { box.remove(); submit(label); });
      box.appendChild(b);
    });
    log.appendChild(box);
  }

  /** The greeting on top, and suggested questions while nothing has been asked. */
  function showIntro() {
    if (!intro) return;
    if (!log.querySelector('.greeting')) {
      const el = document.createElement('div');
      el.className = 'msg bot greeting';
      el.textContent = intro.greeting;
      log.prepend(el);
    }
    if (!messages.length && !pending.length) chips(intro.suggestions, 'suggestions');
  }

  /** Quick replies belong to the last message only, and only while it is the bot's. */
  function showQuickReplies() {
    const last = messages[messages.length - 1];
    if (last && last.role === 'bot' && last.quick_replies && !pending.length) chips(last.quick_replies, 'quick');
    else if (messages.length || pending.length) chips(null);
    // A conversation just closed asks for a rating, once.
    const closed = last && last.role === 'event' && last.event === 'closed' && !pending.length;
    const asked = log.querySelector('.rate');
    if (closed && !asked) askRating();
    else if (!closed && asked) asked.remove();
  }

  function askRating() {
    const box = document.createElement('div');
    box.className = 'rate';
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Rate this conversation');
    const question = document.createElement('div');
    question.textContent = 'How did we do?';
    const stars = document.createElement('div');
    stars.className = 'stars';
    const comment = document.createElement('input');
    comment.type = 'text'; comment.maxLength = 1000;
    comment.placeholder = 'Anything to add? (optional)';
    comment.setAttribute('aria-label', 'Comment');
    for (let score = 1; score <= 5; score++) {
      const b = document.createElement('button');
      b.type = 'button'; b.textContent = '★'; b.dataset.score = String(score);
      b.setAttribute('aria-label', `${score} of 5`);
      b.addEventListener('click', () => {
        if (send({type: 'rating', score, comment: comment.value.trim() || undefined})) box.remove();
      });
      stars.append(b);
    }
    box.append(question, comment, stars);
    log.append(box); scroll();
  }

  function citationsOf(el, citations) {
    if (!citations || !citations.length) return;
    const box = document.createElement('div');
    box.className = 'sources';
    box.append(citations.length > 1 ? 'Sources: ' : 'Source: ');
    citations.forEach((c, i) => {
      if (i) box.append(', ');
      const a = document.createElement('a');
      // Only web links: the server refuses other schemes, and this page is the shop's.
      const url = new URL(c.url, server + '/');
      if (url.protocol === 'https:' || url.protocol === 'http:') a.href = url.href;
      a.target = '_blank'; a.rel = 'noopener';
      a.textContent = c.title;
      box.append(a);
    });
    el.appendChild(box);
  }

  function element(m) {
    const el = document.createElement('div');
    if (m.role === 'event') {
      el.className = 'event';
      el.textContent = m.text;
    } else {
      el.className = 'msg ' + (m.role === 'customer' ? 'customer' : m.role);
      if (m.role === 'agent') {
        const who = document.createElement('span');
        who.className = 'author'; who.textContent = m.agent || 'Our team';
        el.append(who);
      }
      el.append(m.text);
      citationsOf(el, m.citations);
    }
    if (m.seq) el.dataset.seq = m.seq;
    if (m.id && m.role === 'customer') el.dataset.id = m.id;
    return el;
  }

  /** Shows a stored message once, in seq order, replacing a draft or a pending bubble of it. */
  function place(m, replacing) {
    const existing = log.querySelector(`[data-seq="${m.seq}"]`);
    const el = element(m);
    if (existing) { existing.replaceWith(el); if (replacing) replacing.remove(); return; }
    if (replacing) { replacing.replaceWith(el); return; }
    const later = [...log.querySelectorAll('[data-seq]')].find((x) => Number(x.dataset.seq) > m.seq);
    const firstUnsaved = log.querySelector('.pending, .streaming');
    log.insertBefore(el, later || firstUnsaved || null);
    scroll();
  }

  function remember(m) {
    const entry = {seq: m.seq, role: m.role, text: m.text, citations: m.citations || undefined,
      agent: m.agent || undefined, event: m.event || undefined, id: m.id || undefined, kind: m.kind || undefined,
      quick_replies: (m.quick_replies && m.quick_replies.length) ? m.quick_replies : undefined};
    const i = messages.findIndex((x) => x.seq === m.seq);
    if (i >= 0) messages[i] = entry; else { messages.push(entry); messages.sort((a, b) => a.seq - b.seq); }
    persist();
    return entry;
  }

  function note(text) {
    const el = document.createElement('div');
    el.className = 'note'; el.textContent = text;
    log.appendChild(el); scroll();
  }

  function setTyping(text) {
    typing.classList.toggle('show', !!text);
    typingText.textContent = text || '';
    if (text) scroll();
  }

  function pendingBubble(p) {
    const el = element({role: 'customer', text: p.text, id: p.id});
    el.classList.add('pending');
    el.title = 'Sending…';
    log.appendChild(el); scroll();
  }

  function renderAll() {
    log.textContent = '';
    drafts.clear();
    messages.forEach((m) => log.appendChild(element(m)));
    pending.forEach(pendingBubble);
    showIntro(); showQuickReplies();
    showStatus(); scroll();
  }

  function banner(text, retry) {
    $('fd-banner').classList.toggle('show', !!text);
    $('fd-banner-text').textContent = text || '';
    $('fd-retry').hidden = !retry;
  }

  function onEvent(f) {
    if (f.event === 'agent_joined') handler = {status: 'agent', agent: f.agent};
    else if (f.event === 'agent_left') handler = {status: 'bot', agent: null};
    else if (f.event === 'closed') handler = {status: 'closed', agent: null};
    showStatus();
  }

  const handlers = {
    welcome(f) {
      if (sessionId && f.session_id !== sessionId) {
        // The server no longer knows our session: start over, keep unsent messages.
        messages = []; renderAll();
      } else if (f.last_seq < lastSeq()) {
        // The server's store is behind us (restored from a backup): what it
        // no longer has is gone, and its numbering goes on from its last seq.
        messages = messages.filter((m) => m.seq <= f.last_seq); renderAll();
      }
      sessionId = f.session_id; save('session', sessionId);
      handler = {status: f.handled_by || 'bot', agent: f.agent || null};
      if (f.greeting) { intro = {greeting: f.greeting, suggestions: f.suggestions || []}; save('intro', intro); showIntro(); }
      showStatus(); persist();
      pending.forEach((p) => send({type: 'message', id: p.id, text: p.text}));
    },
    history(f) {
      const stored = remember(f);
      place(stored, f.role === 'customer' && f.id ? log.querySelector(`.pending[data-id="${CSS.escape(f.id)}"]`) : null);
      if (f.role === 'customer') { pending = pending.filter((p) => p.id !== f.id); persist(); }
      if (f.role === 'event') onEvent(f);
      showQuickReplies();
    },
    ack(f) {
      const p = pending.find((x) => x.id === f.id);
      const bubble = log.querySelector(`.pending[data-id="${CSS.escape(f.id)}"]`);
      pending = pending.filter((x) => x.id !== f.id);
      if (p) place(remember({seq: f.seq, role: 'customer', text: p.text, id: f.id}), bubble);
      if (handler.status !== 'agent' && !f.duplicate) setTyping('Assistant is thinking…');
    },
    token(f) {
      setTyping(null);
      let el = drafts.get(f.reply_id);
      if (!el) {
        el = document.createElement('div');
        el.className = 'msg bot streaming';
        el.setAttribute('aria-busy', 'true');
        drafts.set(f.reply_id, el);
        log.appendChild(el);
      }
      el.textContent += f.text;
      scroll();
    },
    reply(f) {
      setTyping(null);
      const draft = drafts.get(f.reply_id);
      drafts.delete(f.reply_id);
      // The reply's text is authoritative (the stream carries the same words).
      place(remember({seq: f.seq, role: 'bot', text: f.text, citations: f.citations, kind: f.kind, quick_replies: f.quick_replies}), draft);
      showQuickReplies();
      reveal(log.querySelector(`[data-seq="${f.seq}"]`));
    },
    reply_cancelled(f) {
      const draft = drafts.get(f.reply_id);
      if (draft) draft.remove();
      drafts.delete(f.reply_id);
      setTyping(null);
    },
    agent_message(f) {
      clearTimeout(agentTypingTimer); setTyping(null);
      place(remember({seq: f.seq, role: 'agent', text: f.text, agent: f.agent}));
    },
    event(f) {
      setTyping(null);
      place(remember({seq: f.seq, role: 'event', text: f.text, agent: f.agent, event: f.event}));
      onEvent(f);
      showQuickReplies();
    },
    typing(f) {
      setTyping(`${f.agent} is typing…`);
      clearTimeout(agentTypingTimer);
      agentTypingTimer = setTimeout(() => setTyping(null), 4000);
    },
    error(f) {
      setTyping(null);
      if (f.id) {
        // A refused message will never be acknowledged: stop resending it.
        const bubble = log.querySelector(`.pending[data-id="${CSS.escape(f.id)}"]`);
        if (bubble) bubble.remove();
        pending = pending.filter((p) => p.id !== f.id); persist();
      }
      note(f.code === 'message_too_long' ? 'That message is too long; please shorten it.' : f.message);
    },
  };

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function connect() {
    clearTimeout(retryTimer); clearInterval(countdownTimer);
    if (ws && ws.readyState <= WebSocket.OPEN) return;
    const url = server.replace(/^http/, 'ws') + '/ws';
    let socket;
    try { socket = new WebSocket(url); } catch (_) { scheduleReconnect(); return; }
    ws = socket;
    socket.onopen = () => {
      attempts = 0; banner(null);
      const hello = {type: 'hello', visitor_id: visitorId};
      if (sessionId) { hello.session_id = sessionId; hello.last_seq = lastSeq(); }
      if (identity) hello.identity = identity;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch (_) { return; }
      const handle = f && handlers[f.type];
      // Frames this version does not know are ignored, not fatal.
      if (handle) { try { handle(f); } catch (err) { console.warn('frontdesk: bad frame', f, err); } }
    };
    socket.onclose = () => { if (ws === socket) { ws = null; drafts.forEach((d) => d.remove()); drafts.clear(); setTyping(null); scheduleReconnect(); } };
    socket.onerror = () => socket.close();
  }

  /** Exponential backoff with jitter, from 0.5 s to 15 s; the customer sees why and when. */
  function scheduleReconnect() {
    attempts += 1;
    const delay = Math.min(15000, 500 * 2 ** (attempts - 1)) * (0.75 + Math.random() * 0.5);
    let left = Math.ceil(delay / 1000);
    const show = () => banner(
      (navigator.onLine === false ? "You're offline." : attempts > 2 ? "We can't reach our chat right now." : 'Connection lost.')
        + (pending.length ? ' Your messages will be sent when we are back.' : '') + ` Retrying in ${left} s…`, true);
    if (attempts > 1) show();
    countdownTimer = setInterval(() => { left = Math.max(0, left - 1); if (attempts > 1) show(); }, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  function submit(text) {
    text = text.trim();
    if (!text) return;
    const id = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random().toString(16).slice(2);
    const p = {id, text};
    pending.push(p); persist();
    chips(null);
    pendingBubble(p);
    if (!send({type: 'message', id, text})) connect();
  }

  function setOpen(open) {
    isOpen = open; save('open', open);
    panel.classList.toggle('open', open);
    launcher.setAttribute('aria-expanded', String(open));
    launcher.setAttribute('aria-label', open ? 'Close chat' : 'Open chat');
    if (open) { scroll(); input.focus(); connect(); }
  }

  launcher.addEventListener('click', () => { setOpen(!isOpen); if (!isOpen) launcher.focus(); });
  $('fd-close').addEventListener('click', () => { setOpen(false); launcher.focus(); });
  $('fd-human').addEventListener('click', () => submit("I'd like to talk to a person, please."));
  $('fd-retry').addEventListener('click', () => { attempts = 0; connect(); });
  panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') { setOpen(false); launcher.focus(); } });
  $('fd-form').addEventListener('submit', (e) => { e.preventDefault(); submit(input.value); input.value = ''; input.style.height = ''; });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('fd-form').requestSubmit(); }
  });
  input.addEventListener('input', () => { input.style.height = ''; input.style.height = Math.min(input.scrollHeight, 120) + 'px'; });
  window.addEventListener('online', () => { attempts = 0; connect(); });

  const mount = () => {
    document.body.appendChild(host);
    renderAll();
    setOpen(isOpen);
    // Connect at once when there is a conversation to resume, so replies
    // that arrived while the page was away show up.
    if (sessionId) connect();
  };
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
