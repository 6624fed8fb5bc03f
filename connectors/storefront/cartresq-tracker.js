// CartResQ storefront tracker; beacons follow POST /track in DESIGN.md. Hand-kept small (a test
// caps it at 2 KB gzip). Idle until the cart changes, a contact field is typed in, or exit intent.
(() => {
  const w = window, d = document, n = navigator, D = (d.currentScript || 0).dataset, on = 'addEventListener';
  // Liquid renders checkboxes as "true"/"false"; numbers (test overrides) are milliseconds.
  const yes = (v, f) => (v ? v != 'false' : f), num = (v, f) => ((v = +v) >= 0 ? v : f);
  // Do-Not-Track / Global Privacy Control, when the store honours them: nothing is sent at all.
  if (!D || !D.endpoint || !D.shop || w.CartResQ || (yes(D.honorDnt) && (n.doNotTrack == 1 || n.globalPrivacyControl))) return;
  w.CartResQ = 1;
  const EP = D.endpoint, F = fetch, now = Date.now, t0 = now(), K = 'cartresq', P = Promise.resolve();
  const S = () => w.Shopify || 0, CP = () => S().customerPrivacy, DEB = num(D.debounce, 2e3);
  let ss, cart, rd, dirty, tm, pend, ex, ct, last, ly = 0, lt = 0, ay, at;
  const save = () => { try { localStorage[K] = JSON.stringify(ss) } catch {} };
  // Anonymous first-party session id: new after 30 min idle or 24 h. The visitor id (v) outlives sessions:
  // a later session's product views count for a shopper an earlier session named (server: with consent).
  const id = () => crypto.randomUUID().replace(/-/g, '').slice(8); // 24 hex digits (https pages: a secure context)
  const sess = (t = now()) => {
    try { ss = ss || JSON.parse(localStorage[K]) } catch {}
    if (!/^\w{24}$/.test(ss && ss.s) || t - ss.l > 18e5 || t - ss.c > 864e5)
      ss = { s: id(), c: t, v: (ss && ss.v) || id() };
    ss.l = t;
    save();
    return ss;
  };
  // Personal data needs the store's setting and, on Shopify, the Customer Privacy API's analytics and
  // marketing permission (its *Allowed() answer true where the region needs no consent); a Shopify
  // page whose consent API cannot load gets nothing personal.
  const personal = f => {
    const go = c => f(yes(D.capture, 1) && ((c = CP()) ? c.analyticsProcessingAllowed() && c.marketingAllowed() : !w.Shopify));
    w.Shopify && !CP() && S().loadFeatures ? S().loadFeatures([{ name: 'consent-tracking-api', version: '0.1' }], go) : go();
  };
  const device = () => (matchMedia('(pointer:coarse)').matches ? (innerWidth < 768 ? 'mobile' : 'tablet') : 'desktop');
  const body = (type, x, c) => {
    const s = sess(), p = { v: 1, shop: D.shop, sid: s.s, vid: s.v, type, ts: now(), cart,
      page: D.page,
      tos: (now() - s.c) / 1e3 | 0, device: device(), tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
      // The server attaches contact details only with a consent object saying so (when the store requires it).
      // (Off Shopify, a platform adapter may answer: WooCommerce's WP Consent API or the checkout opt-in.)
      consent: (c = CP()) ? { analytics: c.analyticsProcessingAllowed(), marketing: c.marketingAllowed() } : w.CartResQConsent?.(), ...x };
    let b;
    // At most 8 KB per beacon: drop items from the end until it fits.
    while (new Blob([b = JSON.stringify(p)]).size > 8e3 && p.cart.items[0]) p.cart = { ...p.cart, items: p.cart.items.slice(0, -5) };
    return b;
  };
  // text/plain (sendBeacon's type for a string, and fetch's) needs no CORS preflight.
  const post = b => F(EP, { method: 'POST', body: b, keepalive: true });
  const send = (type, x) => {
    const b = body(type, x);
    n.sendBeacon(EP, b) || post(b).catch(() => {});
  };
  // The cart summary: a platform adapter's (WooCommerce: the plugin's script reads the Store API), else /cart.js.
  const read = () =>
    rd ? ((dirty = 1), rd) : (rd = (w.CartResQCart || (() => F(((S().routes || 0).root || '/') + 'cart.js').then(r => r.json()).then(c => ({
      token: c.token, currency: c.currency, total: c.total_price, count: c.item_count,
      items: c.items.slice(0, 50).map(i => ({ variant_id: i.variant_id, product_id: i.product_id, quantity: i.quantity,
        price: i.price, title: i.title.slice(0, 120), sku: i.sku || void 0 })) }))))().then(c => {
      rd = 0;
      cart = c;
      return dirty ? ((dirty = 0), read()) : cart;
    }, () => (rd = 0)));
  const flush = () => { clearTimeout(tm); pend && send('cart', (pend = 0)) };
  // One beacon DEB ms after the last cart change, with the /cart.js summary read right away.
  const changed = () => read().then(() => { clearTimeout(tm); pend = 1; tm = setTimeout(flush, DEB) });
  // Ajax Cart API writes, with or without .js, locale prefix or query string (test() stringifies URLs).
  const hit = u => /\/cart\/(add|change|update|clear)(\.js)?([?#]|$)/.test(u);
  // fetch takes (resource, options): called as a plain function, as EP's own calls are.
  w.fetch = (i, o) => {
    const p = F(i, o);
    hit((i && i.url) || i) && p.then(r => r.ok && changed(), () => {});
    return p;
  };
  const X = XMLHttpRequest.prototype, O = X.open;
  X.open = function (m, u) {
    hit(u) && this[on]('load', () => this.status < 400 && changed());
    return O.apply(this, arguments);
  };
  // Exit intent: once per session, not in the first seconds, only with a non-empty cart.
  const exit = () =>
    ex || now() - t0 < num(D.exitDelay, 5e3) || sess().x || ((ex = 1), (cart ? P : read()).then(() => {
      if (!(cart && cart.count)) return (ex = 0);
      ss.x = 1;
      save();
      return post(body('exit')).then(r => r.status == 200 && r.json()).then(j => {
        const p = j && j.popup, show = e => {
          e = d.createElement('script');
          e.src = D.popupSrc;
          e.onload = () => w.CartResQPopup(p, D, send);
          d.head.append(e);
        };
        p && yes(D.exitPopup, 1) && (p.kind == 'capture' ? personal(a => a && show()) : show());
      });
    }).catch(() => {}));
  d[on]('mouseout', e => e.relatedTarget || e.clientY > 0 || exit());
  // Touch screens: a fast upward scroll (over 300 px at more than 1 px/ms).
  w[on]('scroll', () => {
    const y = scrollY, t = now();
    y >= ly ? ((ay = y), (at = t)) : t - lt > 300 && ((ay = ly), (at = t - 16));
    ly = y;
    lt = t;
    ay - y > 300 && (ay - y) / (t - at) > 1 && device() > 'desktop' && exit(); // matchMedia only then
  }, { passive: true });
  // Hidden tab: flush now. A tab switch with a cart is exit intent; a navigation is not: its pagehide
  // comes first (ex = 1) or before the 50 ms are up.
  d[on]('visibilitychange', () => d.hidden && (flush(), setTimeout(exit, 50)));
  w[on]('pagehide', () => flush((ex = 1)));
  const contact = (el, v = el.value.trim()) => {
    const k = /mail/i.test(el.type + el.autocomplete) ? 'email' : 'phone'; // the selector matched one of them
    if (k == 'phone' ? /^\+?\d{7,15}$/.test((v = v.replace(/[\s().-]/g, ''))) : /^[^\s@]+@[^\s@]+\.[a-z]{2,}$/i.test(v))
      v != last && personal(a => a && ((last = v), (cart ? P : read()).then(() => send('contact', { contact: { [k]: v } }))));
  };
  const typed = ({ target: el }) => el.matches(
    '[type=email],[type=tel],[autocomplete=email],[autocomplete=tel]'
  ) && !el.closest('#cartresq-popup') && (clearTimeout(ct), (ct = setTimeout(contact, 800, el)));
  // Autofill fires input too. With a platform adapter (data-platform: WooCommerce's plugin script) the
  // adapter owns contact capture (its checkout fields, opt-in box and phone): one contact beacon, not two.
  D.platform || d[on]('input', typed, 1);
  // A product page: one 'view' beacon with the product id the platform rendered (no title; browse abandonment).
  D.product && send('view', { product_id: D.product });
})();
