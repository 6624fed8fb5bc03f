<?php
/**
 * Restore links: `/?cartresq_restore=<payload>.<signature>[&coupon=<code>]` rebuilds the cart, applies
 * the token's coupons and the offer code (WC()->cart->apply_coupon), and opens checkout.
 *
 * The token is made by the app: base64url(JSON {v, o, i: [[product, variation, qty]], c: [coupons], m: email, e: expiry})
 * and base64url(HMAC-SHA256(payload, restore secret)). It only fills a cart: it never logs anyone in,
 * works on any device until it expires, and is refused once expired or altered.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * Restore endpoint.
 */
class CartResQ_Restore {

	const PARAM        = 'cartresq_restore';
	const COUPON_PARAM = 'cartresq_coupon';
	const MAX_ITEMS    = 50;

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( 'wp_loaded', array( __CLASS__, 'maybe_restore' ), 20 );
		add_action( 'wp_loaded', array( __CLASS__, 'maybe_apply_offer' ), 20 );
	}

	/**
	 * The exit popup's offer button: `?cartresq_coupon=<code>` applies the code to the shopper's own cart and
	 * opens checkout without the parameter (WooCommerce has no apply-by-link of its own). Like `&coupon=` on a
	 * restore link it needs no signature: it grants nothing that typing the code at checkout would not, and
	 * WooCommerce still checks the coupon; a refusal is shown there as WooCommerce's own notice.
	 */
	public static function maybe_apply_offer() {
		if ( ! isset( $_GET[ self::COUPON_PARAM ] ) || isset( $_GET[ self::PARAM ] ) || is_admin() || wp_doing_ajax() || null === WC()->cart ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a code, not a form.
			return;
		}
		nocache_headers();
		$code = self::offer_code( self::COUPON_PARAM );
		if ( '' !== $code && ! WC()->cart->is_empty() && ! WC()->cart->has_discount( $code ) ) {
			WC()->cart->apply_coupon( $code );
		}
		wp_safe_redirect( wc_get_checkout_url() );
		exit;
	}

	/**
	 * Handle a restore link, if this request is one.
	 */
	public static function maybe_restore() {
		if ( ! isset( $_GET[ self::PARAM ] ) || is_admin() || wp_doing_ajax() ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- signed token, not a form.
			return;
		}
		$token = sanitize_text_field( wp_unslash( $_GET[ self::PARAM ] ) ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
		nocache_headers();
		$cart = self::verify( $token, CartResQ_Settings::get( 'restore_secret' ), time() );
		if ( is_wp_error( $cart ) ) {
			wc_add_notice( __( 'This cart link has expired or is not valid. Your cart is as you left it.', 'cartresq' ), 'notice' );
			wp_safe_redirect( wc_get_cart_url() );
			exit;
		}
		$offer = self::offer_code();
		if ( '' !== $offer ) {
			$cart['c'] = array_merge( array( $offer ), (array) ( $cart['c'] ?? array() ) );
		}
		self::rebuild( $cart );
		wp_safe_redirect( wc_get_checkout_url() );
		exit;
	}

	/**
	 * The offer code the app adds to a restore link (`&coupon=`), or the exit popup's (`cartresq_coupon`).
	 * It is not signed, and needs no signature: applying a code here grants nothing that typing it into the
	 * cart would not, and WooCommerce still checks its expiry, usage limits and email restriction.
	 *
	 * @param string $param The query parameter holding the code.
	 * @return string
	 */
	private static function offer_code( $param = 'coupon' ) {
		if ( ! isset( $_GET[ $param ] ) || ! is_string( $_GET[ $param ] ) ) { // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a code, not a form.
			return '';
		}
		$code = wc_format_coupon_code( sanitize_text_field( wp_unslash( $_GET[ $param ] ) ) ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
		return strlen( $code ) <= 64 ? $code : '';
	}

	/**
	 * Check the signature and expiry; return the decoded cart or a WP_Error.
	 *
	 * @param string $token  The token from the link.
	 * @param string $secret The restore secret the app handed over.
	 * @param int    $now    Current Unix time.
	 * @return array|WP_Error
	 */
	public static function verify( $token, $secret, $now ) {
		if ( '' === $secret || ! is_string( $token ) || strlen( $token ) > 4096 ) {
			return new WP_Error( 'cartresq_invalid', 'invalid' );
		}
		$parts = explode( '.', $token );
		if ( 2 !== count( $parts ) ) {
			return new WP_Error( 'cartresq_invalid', 'invalid' );
		}
		$expected = self::b64url_encode( hash_hmac( 'sha256', $parts[0], $secret, true ) );
		if ( ! hash_equals( $expected, $parts[1] ) ) {
			return new WP_Error( 'cartresq_invalid', 'bad signature' );
		}
		$body = json_decode( self::b64url_decode( $parts[0] ), true );
		if ( ! is_array( $body ) || 1 !== ( $body['v'] ?? 0 ) || ! isset( $body['e'], $body['i'] ) || ! is_array( $body['i'] ) ) {
			return new WP_Error( 'cartresq_invalid', 'invalid' );
		}
		if ( (int) $body['e'] < $now ) {
			return new WP_Error( 'cartresq_expired', 'expired' );
		}
		return $body;
	}

	/**
	 * Replace the shopper's cart with the one from the token, then apply its coupons.
	 *
	 * @param array $cart Decoded token body.
	 */
	private static function rebuild( array $cart ) {
		if ( null === WC()->cart ) {
			return;
		}
		if ( WC()->session && ! WC()->session->has_session() ) {
			WC()->session->set_customer_session_cookie( true ); // A guest keeps the cart across the redirect.
		}
		WC()->cart->empty_cart();
		foreach ( array_slice( $cart['i'], 0, self::MAX_ITEMS ) as $item ) {
			if ( ! is_array( $item ) || 3 !== count( $item ) ) {
				continue;
			}
			list( $product_id, $variation_id, $quantity ) = array_map( 'absint', $item );
			if ( $product_id && $quantity ) {
				WC()->cart->add_to_cart( $product_id, $quantity, $variation_id );
			}
		}
		self::set_billing_email( $cart );
		foreach ( array_slice( (array) ( $cart['c'] ?? array() ), 0, 5 ) as $code ) {
			$code = wc_format_coupon_code( (string) $code );
			if ( '' !== $code && ! WC()->cart->has_discount( $code ) ) {
				WC()->cart->apply_coupon( $code );
			}
		}
	}

	/**
	 * The signed billing email becomes the cart's billing email when the cart has none, before any code is
	 * applied: WooCommerce checks a coupon's email restriction against the logged-in user's email and the
	 * cart's billing email, and a guest opening the link in a new browser has neither (the offer code is
	 * restricted to the address it was sent to). It also fills the checkout's email field.
	 *
	 * @param array $cart Decoded token body.
	 */
	private static function set_billing_email( array $cart ) {
		$email = isset( $cart['m'] ) && is_string( $cart['m'] ) ? sanitize_email( $cart['m'] ) : '';
		if ( '' === $email || ! is_email( $email ) || ! WC()->customer ) {
			return;
		}
		if ( '' === (string) WC()->customer->get_billing_email() ) {
			WC()->customer->set_billing_email( $email );
			WC()->customer->save(); // A guest's customer lives in the session: kept across the redirect.
		}
	}

	/**
	 * Base64url without padding.
	 *
	 * @param string $data Raw bytes.
	 * @return string
	 */
	public static function b64url_encode( $data ) {
		return rtrim( strtr( base64_encode( $data ), '+/', '-_' ), '=' ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_encode
	}

	/**
	 * Base64url decode (padding optional).
	 *
	 * @param string $data Encoded text.
	 * @return string
	 */
	public static function b64url_decode( $data ) {
		$data .= str_repeat( '=', ( 4 - strlen( $data ) % 4 ) % 4 );
		return (string) base64_decode( strtr( $data, '-_', '+/' ), true ); // phpcs:ignore WordPress.PHP.DiscouragedPHPFunctions.obfuscation_base64_decode
	}
}
