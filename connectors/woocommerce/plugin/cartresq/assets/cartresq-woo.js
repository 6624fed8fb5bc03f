/**
 * CartResQ for WooCommerce: reports the Store API cart and the contact details typed into the
 * classic checkout (#billing_email, #billing_phone) or the block checkout (#email, #billing-phone,
 * #shipping-phone) as beacons to the app's POST /track (see the beacon contract).
 * Configured by data- attributes of its own script tag: data-endpoint, data-shop, data-store-api, and
 * data-consent: what counts as consent when no consent plugin answers through the WP Consent API —
 * `opt-in` (the store's region needs prior consent: only the ticked checkout box) or `implied`.
 */
( function () {
	'use strict';

	var script = document.currentScript;
	if ( ! script || ! window.fetch ) {
		return;
	}
	var endpoint = script.getAttribute( 'data-endpoint' );
	var shop = script.getAttribute( 'data-shop' );
	var storeApi = script.getAttribute( 'data-store-api' );
	var consentMode = script.getAttribute( 'data-consent' ) || 'opt-in';
	if ( ! endpoint || ! shop || ! storeApi ) {
		return;
	}

	var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/;
	var PHONE = /^\+?[0-9 ()\-.]{7,20}$/;
	var EMAIL_FIELDS = '#email, #billing_email, #billing-email';
	/* The plugin's marketing opt-in: classic field, and the Checkout block's additional field. */
	var OPT_IN = '#cartresq_marketing_opt_in, input[id$="cartresq-marketing-opt-in"]';
	var PHONE_FIELDS = '#billing-phone, #shipping-phone, #billing_phone';
	var SID_KEY = 'cartresq_sid';
	var IDLE = 30 * 60 * 1000;
	var MAX_AGE = 24 * 60 * 60 * 1000;

	/* Anonymous first-party session id: new after 30 min idle or 24 h (shared with the tracker when it exposes one). */
	function sessionId() {
		if ( window.CartResQ && window.CartResQ.sid ) {
			return window.CartResQ.sid;
		}
		var now = Date.now();
		var saved = null;
		try {
			saved = JSON.parse( window.localStorage.getItem( SID_KEY ) || 'null' );
		} catch ( e ) {
			saved = null;
		}
		if ( ! saved || now - saved.seen > IDLE || now - saved.born > MAX_AGE ) {
			var bytes = new Uint8Array( 18 );
			window.crypto.getRandomValues( bytes );
			var id = btoa( String.fromCharCode.apply( null, bytes ) ).replace( /\+/g, '-' ).replace( /\//g, '_' );
			saved = { id: id, born: now };
		}
		saved.seen = now;
		try {
			window.localStorage.setItem( SID_KEY, JSON.stringify( saved ) );
		} catch ( e ) {
			/* Private mode: the id lives for this page only. */
		}
		return saved.id;
	}

	function pageType() {
		var body = document.body.classList;
		if ( body.contains( 'woocommerce-checkout' ) ) {
			return 'checkout';
		}
		if ( body.contains( 'woocommerce-cart' ) ) {
			return 'cart';
		}
		if ( body.contains( 'single-product' ) ) {
			return 'product';
		}
		if ( body.contains( 'home' ) ) {
			return 'index';
		}
		return 'other';
	}

	/* WP Consent API, when the site has a consent plugin; otherwise what the merchant's settings declare for
	 * the store's region: the checkout's opt-in box where the law needs one, else implied consent. */
	function consent() {
		if ( typeof window.wp_has_consent !== 'function' ) {
			var box = document.querySelector( OPT_IN );
			var given = consentMode === 'implied' || !! ( box && box.checked );
			return { analytics: given, marketing: given, preferences: given, sale_of_data: false };
		}
		return {
			analytics: !! window.wp_has_consent( 'statistics' ),
			marketing: !! window.wp_has_consent( 'marketing' ),
			preferences: !! window.wp_has_consent( 'preferences' ),
			sale_of_data: !! window.wp_has_consent( 'marketing' ),
		};
	}

	function send( beacon ) {
		beacon.v = 1;
		beacon.shop = shop;
		beacon.sid = sessionId();
		beacon.ts = Date.now();
		beacon.page = pageType();
		try {
			beacon.tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
		} catch ( e ) {
			/* No Intl: the app falls back to the address. */
		}
		var body = JSON.stringify( beacon );
		if ( body.length > 8000 ) {
			return;
		}
		var queued = false;
		if ( navigator.sendBeacon ) {
			queued = navigator.sendBeacon( endpoint, new Blob( [ body ], { type: 'text/plain;charset=UTF-8' } ) );
		}
		if ( ! queued ) {
			fetch( endpoint, { method: 'POST', body: body, keepalive: true, credentials: 'omit', headers: { 'Content-Type': 'text/plain;charset=UTF-8' } } ).catch( function () {} );
		}
	}

	/* The plugin's key of this cart (extensions.cartresq.cart_key): stable for the cart's life, unlike the
	 * Store API Cart-Token header, which is re-issued with a new timestamp on every response. */
	function cartToken( cart ) {
		var key = ( ( cart.extensions || {} ).cartresq || {} ).cart_key;
		return typeof key === 'string' && /^wc-[0-9a-f]{40}$/.test( key ) ? key : null;
	}

	/* Store API money is minor units as strings, with currency_minor_unit: the beacon wants integers. */
	function readCart() {
		return fetch( storeApi, { credentials: 'same-origin', headers: { Accept: 'application/json' } } ).then( function ( response ) {
			if ( ! response.ok ) {
				return null;
			}
			return response.json().then( function ( cart ) {
				var totals = cart.totals || {};
				return {
					token: cartToken( cart ),
					currency: totals.currency_code,
					total: parseInt( totals.total_price, 10 ) || 0,
					count: cart.items_count || 0,
					items: ( cart.items || [] ).slice( 0, 50 ).map( function ( item ) {
						var isVariation = item.variation && item.variation.length > 0;
						return {
							variant_id: isVariation ? item.id : null,
							product_id: item.id,
							quantity: item.quantity,
							price: parseInt( ( item.prices || {} ).price, 10 ) || 0,
							title: String( item.name || '' ).slice( 0, 120 ),
							sku: item.sku || undefined,
						};
					} ),
				};
			} );
		} ).catch( function () {
			return null;
		} );
	}

	/* The storefront tracker's WooCommerce adapter: its cart summary (instead of Shopify's /cart.js) and the
	 * consent its beacons carry. */
	window.CartResQCart = readCart;
	window.CartResQConsent = consent;

	var cartTimer = null;
	function reportCart() {
		window.clearTimeout( cartTimer );
		cartTimer = window.setTimeout( function () {
			readCart().then( function ( cart ) {
				if ( cart && cart.token && cart.count > 0 ) {
					send( { type: 'cart', cart: cart } );
				}
			} );
		}, 400 );
	}

	var contactTimer = null;
	var lastContact = '';
	function reportContact() {
		window.clearTimeout( contactTimer );
		contactTimer = window.setTimeout( function () {
			var allowed = consent();
			if ( allowed && ! allowed.marketing ) {
				return;
			}
			var emailField = document.querySelector( EMAIL_FIELDS );
			var phoneField = document.querySelector( PHONE_FIELDS );
			var email = emailField ? emailField.value.trim() : '';
			var phone = phoneField ? phoneField.value.trim() : '';
			var contact = {};
			if ( EMAIL.test( email ) ) {
				contact.email = email;
			}
			if ( PHONE.test( phone ) ) {
				contact.phone = phone;
			}
			var key = JSON.stringify( contact );
			if ( key === '{}' || key === lastContact ) {
				return;
			}
			lastContact = key;
			readCart().then( function ( cart ) {
				var beacon = { type: 'checkout_contact', contact: contact };
				if ( ! cart || ! cart.token ) {
					return; /* a contact beacon needs the cart it belongs to */
				}
				beacon.cart = cart;
				if ( allowed ) {
					beacon.consent = allowed;
				}
				send( beacon );
			} );
		}, 600 );
	}

	/* Block checkout fields are rendered by React after load: listen on the document, not the fields. */
	[ 'input', 'change', 'blur' ].forEach( function ( name ) {
		document.addEventListener( name, function ( event ) {
			var target = event.target;
			if ( target && target.matches && ( target.matches( EMAIL_FIELDS ) || target.matches( PHONE_FIELDS ) || target.matches( OPT_IN ) ) ) {
				reportContact();
			}
		}, true );
	} );

	/* Classic cart fragments (jQuery events) and the cart/checkout blocks' DOM events. */
	if ( window.jQuery ) {
		window.jQuery( document.body ).on( 'added_to_cart removed_from_cart updated_cart_totals', reportCart );
	}
	[ 'wc-blocks_added_to_cart', 'wc-blocks_removed_from_cart' ].forEach( function ( name ) {
		document.body.addEventListener( name, reportCart );
	} );
	if ( pageType() === 'cart' || pageType() === 'checkout' ) {
		reportCart();
		reportContact(); /* Autofilled or returning shoppers already have the fields filled. */
	}
}() );
