// The web chat page: posts the citizen's messages, polls for replies every two seconds.
// Every text is put in with textContent, never as HTML.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("form");
  const input = document.getElementById("text");
  const status = document.getElementById("status");
  const START = "/start";
  const TOO_MANY = "Слишком много сообщений. Подождите минуту и попробуйте ещё раз.";
  let lastId = 0;
  let polling = false;

  function clientId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function render(message) {
    if (message.direction === "in" && message.text === START) return; // the page's own greeting request
    const item = document.createElement("li");
    item.className = "msg msg--" + message.direction;
    item.dataset.id = String(message.id);
    const author = document.createElement("div");
    author.className = "msg__author";
    author.textContent = message.author;
    const text = document.createElement("div");
    text.className = "msg__text";
    text.textContent = message.text;
    item.append(author, text);
    if (message.payment_url && /^https?:\/\//.test(message.payment_url)) {
      const link = document.createElement("a");
      link.href = message.payment_url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      link.textContent = "Перейти к оплате";
      item.append(document.createElement("br"), link);
    }
    if (message.qr_url) {
      const qr = document.createElement("img");
      qr.className = "msg__qr";
      qr.src = message.qr_url;
      qr.alt = "QR-код для оплаты";
      item.append(qr);
    }
    const buttons = document.createElement("div");
    buttons.className = "msg__buttons";
    for (const row of message.buttons || []) {
      for (const b of row) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.button = b.id;
        button.textContent = b.text;
        buttons.append(button);
      }
    }
    if (buttons.childElementCount) item.append(buttons);
    log.append(item);
    item.scrollIntoView({ block: "end" });
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const response = await fetch("/api/chat/messages?after=" + lastId, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      for (const message of await response.json()) {
        if (message.id > lastId) {
          render(message);
          lastId = message.id;
        }
      }
      status.textContent = "";
    } catch (error) {
      status.textContent = "Нет связи с сервером. Пробуем ещё раз…";
    } finally {
      polling = false;
    }
  }

  async function send(payload) {
    payload.client_id = clientId();
    try {
      const response = await fetch("/api/chat/messages", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      if (response.status === 429) {
        // Too many new conversations or requests: say when to try again (the server's
        // Russian text when it gave one).
        const refused = await response.json().catch(() => ({}));
        const detail = typeof refused.detail === "string" ? refused.detail : "";
        status.textContent = /[А-Яа-яЁё]/.test(detail) ? detail : TOO_MANY;
        if (payload.text && payload.text !== START && !input.value) input.value = payload.text;
      } else {
        if (!response.ok) throw new Error(String(response.status));
        const result = await response.json();
        status.textContent = result.note || "";
      }
    } catch (error) {
      status.textContent = "Сообщение не отправлено. Попробуйте ещё раз.";
    }
    await poll();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ text: text });
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  document.addEventListener("click", (event) => {
    const target = event.target;
    if (target instanceof HTMLButtonElement && target.dataset.button) {
      send({ button: target.dataset.button, label: target.textContent });
    }
  });

  poll().then(() => {
    if (lastId === 0) send({ text: START });
  });
  setInterval(poll, 2000);
})();
