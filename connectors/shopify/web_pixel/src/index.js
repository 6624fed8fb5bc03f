// CartResQ web pixel (strict sandbox): checkout steps → POST /track beacons (contract: DESIGN.md).
// Shopify runs it only with the consent declared in shopify.extension.toml; contact details are
// still dropped when the visitor's current consent stops allowing marketing.
import { register } from '@shopify/web-pixels-extension';

const EVENTS = {
  checkout_started: 'checkout_started',
  checkout_contact_info_submitted: 'checkout_contact',
  checkout_completed: 'checkout_completed',
};

// Money in minor units, as the tracker's /cart.js totals (JPY has 0 decimals, KWD 3).
export function minor(money) {
  if (!money || money.amount == null) return undefined;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency: money.currencyCode }).resolvedOptions()
      .maximumFractionDigits;
  } catch (e) {}
  return Math.round(Number(money.amount) * 10 ** digits);
}

const numericId = id => {
  const n = Number(String(id == null ? '' : id).split('/').pop());
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
};

export function beacon(event, shop, sid, consent) {
  const checkout = (event.data && event.data.checkout) || {};
  const lines = checkout.lineItems || [];
  const body = {
    v: 1,
    shop,
    sid,
    type: EVENTS[event.name],
    ts: Date.parse(event.timestamp) || Date.now(),
    page: 'checkout',
    checkout_token: checkout.token || undefined,
    cart: {
      currency: checkout.currencyCode,
      total: minor(checkout.totalPrice),
      count: lines.reduce((n, l) => n + (l.quantity || 0), 0),
      items: lines.slice(0, 50).map(l => ({
        variant_id: numericId(l.variant && l.variant.id),
        product_id: numericId(l.variant && l.variant.product && l.variant.product.id),
        quantity: l.quantity,
        price: minor(l.variant && l.variant.price),
        title: String(l.title || '').slice(0, 120),
        sku: (l.variant && l.variant.sku) || undefined,
      })),
    },
    consent: {
      analytics: !!consent.analyticsProcessingAllowed,
      marketing: !!consent.marketingAllowed,
      preferences: !!consent.preferencesProcessingAllowed,
      sale_of_data: !!consent.saleOfDataAllowed,
    },
  };
  if (consent.analyticsProcessingAllowed && consent.marketingAllowed && (checkout.email || checkout.phone)) {
    body.contact = { email: checkout.email || undefined, phone: checkout.phone || undefined };
  }
  return body;
}

register(({ analytics, browser, init, settings, customerPrivacy }) => {
  const endpoint = settings.endpoint;
  const shop = init.data.shop.myshopifyDomain;
  let consent = init.customerPrivacy || {};
  customerPrivacy.subscribe('visitorConsentCollected', e => {
    consent = e.customerPrivacy;
  });

  // The storefront tracker's session id when it is there, so storefront and checkout beacons join.
  const sessionId = async event => {
    try {
      const s = JSON.parse(await browser.localStorage.getItem('cartresq'));
      if (s && /^[\w-]{16,64}$/.test(s.s)) return s.s;
    } catch (e) {}
    return event.clientId;
  };

  const post = async event => {
    let body = JSON.stringify(beacon(event, shop, await sessionId(event), consent));
    if (body.length > 8000) {
      const b = JSON.parse(body);
      b.cart.items = b.cart.items.slice(0, 10);
      body = JSON.stringify(b);
    }
    // text/plain: no CORS preflight (the same as the storefront tracker).
    const sent = await browser.sendBeacon(endpoint, body).catch(() => false);
    if (!sent) {
      fetch(endpoint, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': 'text/plain' } })
        .catch(() => {});
    }
  };

  for (const name of Object.keys(EVENTS)) analytics.subscribe(name, post);
});
