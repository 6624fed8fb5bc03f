<?php
/**
 * Storefront: enqueue the CartResQ tracker (served by the app) and the WooCommerce capture script.
 *
 * @package CartResQ
 */

defined( 'ABSPATH' ) || exit;

/**
 * Scripts on the storefront, deferred so they never block rendering.
 */
class CartResQ_Frontend {

	/**
	 * Hooks.
	 */
	public static function init() {
		add_action( 'init', array( __CLASS__, 'maybe_service_worker' ), 0 );
		add_action( 'wp_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
		add_filter( 'script_loader_tag', array( __CLASS__, 'data_attributes' ), 10, 2 );
	}

	/**
	 * `/cartresq-sw.js` at the site root: the web-push service worker. A service worker must come from the
	 * page's own origin (and its path bounds its scope), so it is served here and imports CartResQ's
	 * worker (`<app>/push/sw.js`, one source for both platforms).
	 */
	public static function maybe_service_worker() {
		$path = wp_parse_url( isset( $_SERVER['REQUEST_URI'] ) ? esc_url_raw( wp_unslash( $_SERVER['REQUEST_URI'] ) ) : '', PHP_URL_PATH );
		$home = (string) wp_parse_url( home_url( '/' ), PHP_URL_PATH );
		if ( ! is_string( $path ) || $home . 'cartresq-sw.js' !== $path ) {
			return;
		}
		$app = CartResQ_Settings::app_url();
		if ( '' === $app ) {
			status_header( 404 );
			exit;
		}
		status_header( 200 );
		header( 'Content-Type: text/javascript; charset=utf-8' );
		header( 'Service-Worker-Allowed: ' . $home );
		header( 'Cache-Control: no-cache' );
		header( 'X-Content-Type-Options: nosniff' );
		echo 'importScripts(' . wp_json_encode( $app . '/push/sw.js' ) . ");\n"; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- JSON-encoded URL in a script.
		exit;
	}

	/**
	 * Both scripts, with `defer` (WordPress 6.3+ loading strategies).
	 */
	public static function enqueue() {
		$app = CartResQ_Settings::app_url();
		if ( '' === $app || '' === CartResQ_Settings::get( 'store_key' ) ) {
			return; // Not connected yet: nothing to report to.
		}
		wp_enqueue_script(
			'cartresq-tracker',
			$app . '/static/cartresq-tracker.js',
			array(),
			CARTRESQ_VERSION,
			array(
				'strategy'  => 'defer',
				'in_footer' => true,
			)
		);
		wp_enqueue_script(
			'cartresq-woo',
			plugins_url( 'assets/cartresq-woo.js', CARTRESQ_FILE ),
			array(),
			CARTRESQ_VERSION,
			array(
				'strategy'  => 'defer',
				'in_footer' => true,
			)
		);
	}

	/**
	 * The exit popup the tracker loads when the app answers an exit beacon with one, and this platform's URLs
	 * for it (the popup's defaults are Shopify's): the offer link (`?cartresq_coupon=` + the code, applied by
	 * CartResQ_Restore on the way to checkout), the checkout, and with web push the worker at the site root
	 * and the app's key and subscription endpoints.
	 *
	 * @return string
	 */
	private static function popup_attributes() {
		$app      = CartResQ_Settings::app_url();
		$checkout = wc_get_checkout_url();
		$urls     = array(
			'popup-src'    => $app . '/static/cartresq-popup.js',
			'offer-url'    => $checkout . ( false === strpos( $checkout, '?' ) ? '?' : '&' ) . CartResQ_Restore::COUPON_PARAM . '=',
			'checkout-url' => $checkout,
		);
		if ( 'yes' === CartResQ_Settings::get( 'web_push' ) ) {
			$urls['push-sw']        = home_url( '/cartresq-sw.js' );
			$urls['push-key']       = $app . '/push/key';
			$urls['push-subscribe'] = $app . '/push/subscribe';
		}
		$out = '';
		foreach ( $urls as $name => $url ) {
			$out .= sprintf( ' data-%s="%s"', $name, esc_attr( $url ) );
		}
		return $out;
	}

	/**
	 * Configure the scripts through `data-` attributes of their own tags (the tracker's contract).
	 *
	 * @param string $tag    The script tag.
	 * @param string $handle The script handle.
	 * @return string
	 */
	public static function data_attributes( $tag, $handle ) {
		if ( 'cartresq-tracker' !== $handle && 'cartresq-woo' !== $handle ) {
			return $tag;
		}
		$attributes = sprintf(
			' data-endpoint="%s" data-shop="%s" data-platform="woocommerce"',
			esc_attr( CartResQ_Settings::app_url() . '/track' ),
			esc_attr( CartResQ_Settings::shop_domain() )
		);
		if ( 'cartresq-tracker' === $handle ) {
			$attributes .= self::popup_attributes();
			if ( function_exists( 'is_product' ) && is_product() ) {
				// Browse abandonment: the tracker sends one 'view' beacon with this id (never a title).
				$attributes .= sprintf( ' data-product="%d"', absint( get_the_ID() ) );
			}
		}
		if ( 'cartresq-woo' === $handle ) {
			$attributes .= sprintf(
				' data-store-api="%s" data-consent="%s"',
				esc_attr( rest_url( 'wc/store/v1/cart' ) ),
				esc_attr( CartResQ_Consent::storefront_mode() )
			);
		}
		return preg_replace( '/<script\b/', '<script' . $attributes, $tag, 1 );
	}
}
