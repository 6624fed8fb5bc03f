// CartResQ exit popup: loaded by the tracker only when a popup is about to show.
// CartResQPopup(popup, dataset, send): popup is {kind: "capture"} or {kind: "offer", code, text} from
// POST /track; dataset holds the translated texts (data-t-*); send(type, extra) posts a beacon.
// A fixed overlay (nothing on the page moves), role="dialog" + aria-modal, labelled and described,
// focus kept inside, Escape or the close button or a click outside closes it.
// With data-push-base (the app proxy path, e.g. /apps/cartresq) it also offers web-push reminders.
// Platform URLs (Shopify's by default) may be given by the platform's adapter as data- attributes of the
// tracker's tag, as WooCommerce's plugin does: data-offer-url (the code is appended, URL-encoded),
// data-checkout-url, data-push-sw (the worker at the site root; its folder is the scope), data-push-key and
// data-push-subscribe (the app's own endpoints); the cart token comes from the adapter's CartResQCart.
window.CartResQPopup = (popup, D, send) => {
  const d = document;
  if (d.getElementById('cartresq-popup')) return;
  const t = (key, fallback) => D['t' + key] || fallback;
  const el = (tag, attrs, text, parent) => {
    const e = d.createElement(tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text; // never innerHTML: the offer text comes from the network
    if (parent) parent.append(e);
    return e;
  };
  const style = el('style', {}, `
#cartresq-popup{position:fixed;inset:0;z-index:2147483647;display:flex;align-items:center;justify-content:center;padding:1rem;background:rgba(0,0,0,.5);font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111}
#cartresq-popup .cq-d{position:relative;box-sizing:border-box;width:100%;max-width:24rem;padding:1.5rem;background:#fff;border-radius:.5rem;box-shadow:0 .5rem 2rem rgba(0,0,0,.3)}
#cartresq-popup h2{margin:0 2rem .5rem 0;font-size:1.25rem;line-height:1.3}
#cartresq-popup p{margin:0 0 1rem}
#cartresq-popup .cq-x{position:absolute;top:.5rem;right:.5rem;width:2.75rem;height:2.75rem;border:0;background:none;font-size:1.75rem;line-height:1;cursor:pointer;color:#111}
#cartresq-popup .cq-c{padding:.6rem;border:2px dashed #111;font:700 1.25rem/1.2 ui-monospace,monospace;text-align:center;letter-spacing:.05em}
#cartresq-popup label{display:block;font-weight:600}
#cartresq-popup input{box-sizing:border-box;width:100%;margin:.25rem 0 .75rem;padding:.65rem;border:1px solid #555;border-radius:.25rem;font:inherit}
#cartresq-popup .cq-b{display:block;box-sizing:border-box;width:100%;padding:.75rem;border:0;border-radius:.25rem;background:#111;color:#fff;font:inherit;font-weight:600;text-align:center;text-decoration:none;cursor:pointer}
#cartresq-popup .cq-w{margin-top:.5rem}
#cartresq-popup .cq-p{background:#fff;color:#111;box-shadow:inset 0 0 0 2px #111}
#cartresq-popup .cq-s{margin:0;font-size:.875rem;text-align:center}
#cartresq-popup :focus-visible{outline:3px solid #2563eb;outline-offset:2px}
@media (prefers-reduced-motion:no-preference){#cartresq-popup .cq-d{animation:cq-in .2s ease-out}}
@keyframes cq-in{from{opacity:0;transform:translateY(.5rem)}}`, d.head);
  const overlay = el('div', { id: 'cartresq-popup' });
  const dialog = el('div', { class: 'cq-d', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'cq-title',
    'aria-describedby': 'cq-text', tabindex: '-1' }, '', overlay);
  const closeButton = el('button', { type: 'button', class: 'cq-x', 'aria-label': t('Close', 'Close') }, '\u00d7', dialog);
  const offer = popup.kind == 'offer', code = offer && popup.code;
  el('h2', { id: 'cq-title' }, offer ? t('OfferTitle', 'Before you go') : t('CaptureTitle', 'Save your cart?'), dialog);
  const text = el('p', { id: 'cq-text' }, offer ? popup.text || t('OfferText', 'Here is a discount for your order.')
    : t('CaptureText', "Enter your email and we'll send you a link back to your cart."), dialog);
  const root = ((window.Shopify || 0).routes || 0).root || '/';
  if (offer) {
    // With a code, Shopify's /discount/CODE link (WooCommerce: the plugin's data-offer-url) applies it on the
    // way to checkout.
    if (code) el('p', { class: 'cq-c' }, code, dialog);
    const href = code ? (D.offerUrl ? D.offerUrl + encodeURIComponent(code)
      : `${root}discount/${encodeURIComponent(code)}?redirect=%2Fcheckout`) : D.checkoutUrl || `${root}checkout`;
    el('a', { class: 'cq-b', href },
      code ? t('OfferButton', 'Apply code and check out') : t('CheckoutButton', 'Go to checkout'), dialog);
  } else {
    const form = el('form', { novalidate: '' }, '', dialog);
    el('label', { for: 'cq-email' }, t('EmailLabel', 'Email'), form);
    const input = el('input', { id: 'cq-email', type: 'email', name: 'email', autocomplete: 'email', required: '',
      inputmode: 'email' }, '', form);
    el('button', { type: 'submit', class: 'cq-b' }, t('CaptureButton', 'Save my cart'), form);
    // A submit button makes Enter in the field submit the form too.
    form.addEventListener('submit', e => {
      e.preventDefault();
      const email = input.value.trim();
      if (!input.checkValidity() || !/^[^\s@]+@[^\s@]+\.[a-z]{2,}$/i.test(email)) {
        input.setAttribute('aria-invalid', 'true');
        return input.focus();
      }
      send('popup', { popup: 'email_submitted', contact: { email } });
      form.remove();
      text.textContent = t('Thanks', 'Thanks! Check your inbox for a link back to your cart.');
      text.setAttribute('role', 'status');
      closeButton.focus();
    });
  }
  // Web push: only where the browser has it, the shopper has not blocked notifications, and the embed
  // names our app proxy base (same origin, as a service worker must be). Permission is asked on the
  // click (browsers want a user gesture); any failure ends in one neutral line, never an exception.
  const base = D.pushBase, nav = navigator, N = window.Notification;
  const sw = D.pushSw || (base && base + '/sw.js'), scope = sw && sw.replace(/[^/]*$/, '');
  const keyUrl = D.pushKey || base + '/push/key', subscribeUrl = D.pushSubscribe || base + '/push/subscribe';
  if (sw && 'serviceWorker' in nav && 'PushManager' in window && N && N.permission != 'denied') {
    const wrap = el('div', { class: 'cq-w' }, '', dialog);
    const button = el('button', { type: 'button', class: 'cq-b cq-p' }, t('PushButton', 'Remind me in this browser'), wrap);
    // The live region exists before it is filled, so screen readers announce the result.
    const status = el('p', { class: 'cq-s', role: 'status' }, '', wrap);
    const json = r => (r.ok ? r.json() : Promise.reject(r.status));
    const done = message => {
      const focused = d.activeElement == button;
      wrap.style.minHeight = wrap.offsetHeight + 'px'; // the line takes the button's place: nothing moves
      button.remove();
      status.textContent = message;
      if (focused) closeButton.focus();
    };
    // A registration outside the page's scope never becomes navigator.serviceWorker.ready, and
    // pushManager.subscribe needs an active worker: wait for this one.
    const active = reg => reg.active ? reg : new Promise((ok, fail) => {
      const worker = reg.installing || reg.waiting;
      worker.addEventListener('statechange', () => worker.state == 'activated' ? ok(reg) : worker.state == 'redundant' && fail());
    });
    // Each step only after the one before succeeded: a refusal or a missing key registers nothing.
    button.addEventListener('click', async () => {
      let message = t('PushFailed', 'Browser reminders are not available right now.'), sid;
      try {
        if (await N.requestPermission() != 'granted') throw 0;
        const key = (await json(await fetch(keyUrl))).publicKey;
        const reg = await active(await nav.serviceWorker.register(sw, { scope }));
        const subscription = await reg.pushManager.subscribe({ userVisibleOnly: true,
          applicationServerKey: Uint8Array.from(atob(key.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0)) });
        try { sid = JSON.parse(localStorage.cartresq).s } catch (e) {} // the tracker's session id
        // The cart token links the subscription to this cart; without it the server keeps it by sid.
        const cart = await (window.CartResQCart ? window.CartResQCart() : fetch(root + 'cart.js').then(json)).catch(() => 0);
        await json(await fetch(subscribeUrl, { method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ shop: D.shop, sid, cart_token: (cart || 0).token, subscription }) }));
        message = t('PushThanks', "Done. We'll remind you in this browser.");
      } catch (e) {}
      done(message);
    }, { once: true });
  }
  const focusable = () => [...dialog.querySelectorAll('a[href],button,input')];
  const opener = d.activeElement;
  const onKey = e => {
    if (e.key == 'Escape') return close();
    if (e.key != 'Tab') return;
    const items = focusable(), first = items[0], lastItem = items[items.length - 1], at = d.activeElement;
    if (e.shiftKey ? at == first || at == dialog : at == lastItem) {
      e.preventDefault();
      (e.shiftKey ? lastItem : first).focus();
    }
  };
  // Focus that escapes (a click on the page behind, an assistive-tech jump) is brought back.
  const onFocus = e => dialog.contains(e.target) || focusable()[0].focus();
  const close = () => {
    overlay.remove();
    style.remove();
    d.removeEventListener('keydown', onKey, true);
    d.removeEventListener('focusin', onFocus, true);
    if (opener && opener.focus) opener.focus();
    send('popup', { popup: 'closed' });
  };
  closeButton.addEventListener('click', close);
  overlay.addEventListener('click', e => e.target == overlay && close());
  d.addEventListener('keydown', onKey, true);
  d.addEventListener('focusin', onFocus, true);
  d.body.append(overlay);
  (offer ? focusable()[1] : dialog.querySelector('input')).focus();
  send('popup', { popup: 'shown' });
};
